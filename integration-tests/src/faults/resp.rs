//! A blocking Redis client small enough to trust in `Drop`: one socket, RESP2 requests and
//! replies, no runtime. The fault tools use it for admin work, which must go on while the
//! server refuses new clients (`maxclients`) and while a test's runtime is unwinding.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The reply as text (status, bulk string or integer), or the server's error.
    pub(crate) fn text(&self) -> Result<String, String> {
        match self {
            Reply::Status(s) => Ok(s.clone()),
            Reply::Bulk(Some(b)) => Ok(String::from_utf8_lossy(b).into_owned()),
            Reply::Bulk(None) => Ok(String::new()),
            Reply::Int(n) => Ok(n.to_string()),
            Reply::Error(e) => Err(e.clone()),
            Reply::Array(_) => Err(format!("expected text, got {self:?}")),
        }
    }

    /// The reply as an integer, or the server's error.
    pub(crate) fn int(&self) -> Result<i64, String> {
        match self {
            Reply::Int(n) => Ok(*n),
            other => other
                .text()?
                .parse()
                .map_err(|_| format!("expected an integer, got {other:?}")),
        }
    }
}

/// A connection to one Redis server, opened when first needed and again after a failure.
pub(crate) struct Resp {
    addr: SocketAddr,
    password: Option<String>,
    conn: Option<BufReader<TcpStream>>,
}

const IO_LIMIT: Duration = Duration::from_secs(2);

impl Resp {
    /// A client for `addr`; nothing is connected yet.
    pub(crate) fn new(addr: SocketAddr, password: Option<String>) -> Resp {
        Resp {
            addr,
            password,
            conn: None,
        }
    }

    /// Opens the socket now, so later calls need no new client slot on the server.
    pub(crate) fn connect(&mut self) -> io::Result<()> {
        if self.conn.is_none() {
            let stream = TcpStream::connect_timeout(&self.addr, IO_LIMIT)?;
            stream.set_read_timeout(Some(IO_LIMIT))?;
            stream.set_write_timeout(Some(IO_LIMIT))?;
            let _ = stream.set_nodelay(true);
            self.conn = Some(BufReader::new(stream));
            if let Some(password) = self.password.clone() {
                if let Err(e) = self.send(&["AUTH", &password]).and_then(|r| {
                    r.text()
                        .map(drop)
                        .map_err(|e| io::Error::new(io::ErrorKind::PermissionDenied, e))
                }) {
                    self.conn = None;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Sends one command and reads its reply. A broken socket (the server restarted, or closed
    /// an idle client) is opened again once.
    pub(crate) fn call(&mut self, args: &[&str]) -> io::Result<Reply> {
        let had_socket = self.conn.is_some();
        self.connect()?;
        match self.send(args) {
            Ok(reply) => Ok(reply),
            Err(_) if had_socket => {
                self.conn = None;
                self.connect()?;
                self.send(args)
            }
            Err(e) => {
                self.conn = None;
                Err(e)
            }
        }
    }

    fn send(&mut self, args: &[&str]) -> io::Result<Reply> {
        let conn = self.conn.as_mut().expect("connected");
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            request.extend_from_slice(arg.as_bytes());
            request.extend_from_slice(b"\r\n");
        }
        let result = conn.get_mut().write_all(&request).and_then(|()| read(conn));
        if result.is_err() {
            self.conn = None;
        }
        result
    }
}

fn read(conn: &mut BufReader<TcpStream>) -> io::Result<Reply> {
    let mut line = String::new();
    if conn.read_line(&mut line)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let line = line.trim_end_matches(['\r', '\n']);
    let (kind, rest) = line.split_at(line.len().min(1));
    let bad = || io::Error::new(io::ErrorKind::InvalidData, format!("bad reply {line:?}"));
    let number = || rest.parse::<i64>().map_err(|_| bad());
    Ok(match kind {
        "+" => Reply::Status(rest.to_owned()),
        "-" => Reply::Error(rest.to_owned()),
        ":" => Reply::Int(number()?),
        "$" => match usize::try_from(number()?) {
            Err(_) => Reply::Bulk(None),
            Ok(len) => {
                let mut body = vec![0; len + 2];
                conn.read_exact(&mut body)?;
                body.truncate(len);
                Reply::Bulk(Some(body))
            }
        },
        "*" => match usize::try_from(number()?) {
            Err(_) => Reply::Array(None),
            Ok(len) => Reply::Array(Some(
                (0..len).map(|_| read(conn)).collect::<io::Result<_>>()?,
            )),
        },
        _ => return Err(bad()),
    })
}
