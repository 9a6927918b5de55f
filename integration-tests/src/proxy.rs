//! A TCP fault proxy on loopback, between a pool and a real server, whose behaviour a test
//! switches while it runs.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with traffic. Applies to new connections and, from their next read,
/// to established ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forwards everything both ways.
    Pass,
    /// Forwards everything, each chunk delayed this long.
    Latency(Duration),
    /// Accepts connections but never forwards nor answers anything.
    BlackHole,
    /// Resets every connection: new ones at once, established ones at their next read.
    Reset,
    /// Forwards this many bytes more per connection (both ways together), then cuts it.
    CutAfter(u64),
}

/// A running proxy; stops when dropped.
pub struct Proxy {
    addr: SocketAddr,
    fault: watch::Sender<Fault>,
    accepted: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    /// Starts a proxy on a free loopback port that forwards to `upstream`.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free loopback port");
        let addr = listener.local_addr().expect("the bound address");
        let (fault, watch) = watch::channel(Fault::Pass);
        let accepted = Arc::new(AtomicU64::new(0));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(accept(
            listener,
            upstream,
            watch,
            Arc::clone(&accepted),
            Arc::clone(&conns),
        ));
        Proxy {
            addr,
            fault,
            accepted,
            task,
            conns,
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Switches the behaviour.
    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Cuts every established connection at once (new ones are still accepted).
    pub fn cut_all(&self) {
        for conn in self.conns.lock().expect("proxy connections").drain(..) {
            conn.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut_all();
    }
}

async fn accept(
    listener: TcpListener,
    upstream: SocketAddr,
    fault: watch::Receiver<Fault>,
    accepted: Arc<AtomicU64>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
) {
    while let Ok((client, _)) = listener.accept().await {
        accepted.fetch_add(1, Ordering::SeqCst);
        let conn = tokio::spawn(serve(client, upstream, fault.clone()));
        let mut conns = conns.lock().expect("proxy connections");
        conns.retain(|c| !c.is_finished());
        conns.push(conn.abort_handle());
    }
}

async fn serve(client: TcpStream, upstream: SocketAddr, mut fault: watch::Receiver<Fault>) {
    let now = *fault.borrow_and_update();
    match now {
        Fault::Reset => return reset(client),
        // Hold the socket open without a byte either way until the fault changes.
        Fault::BlackHole => {
            let _ = fault.wait_for(|f| *f != Fault::BlackHole).await;
            return reset(client);
        }
        _ => {}
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return reset(client);
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let budget = Arc::new(AtomicU64::new(match now {
        Fault::CutAfter(n) => n,
        _ => u64::MAX,
    }));
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = pump(
        client_read,
        server_write,
        fault.clone(),
        Arc::clone(&budget),
    );
    let down = pump(server_read, client_write, fault, budget);
    // Either direction ending ends the connection.
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

/// Copies one direction, applying the fault to each chunk.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    fault: watch::Receiver<Fault>,
    budget: Arc<AtomicU64>,
) {
    let mut buf = vec![0; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let current = *fault.borrow();
        match current {
            Fault::Reset => return,
            Fault::BlackHole => {
                // Swallow: neither side hears anything until the fault changes.
                let mut fault = fault.clone();
                let _ = fault.wait_for(|f| *f != Fault::BlackHole).await;
                return;
            }
            Fault::Latency(d) => tokio::time::sleep(d).await,
            Fault::CutAfter(n) => {
                // Switched to a cut on an established connection: start its budget now.
                let _ = budget.compare_exchange(u64::MAX, n, Ordering::SeqCst, Ordering::SeqCst);
            }
            Fault::Pass => {}
        }
        let left = budget.load(Ordering::SeqCst);
        let take = (n as u64).min(left);
        if take > 0 && to.write_all(&buf[..take as usize]).await.is_err() {
            return;
        }
        if left != u64::MAX {
            budget.fetch_sub(take, Ordering::SeqCst);
            if take < n as u64 || left == take {
                return;
            }
        }
    }
}

/// Closes with a reset (RST) rather than an orderly shutdown.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}
