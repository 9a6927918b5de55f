//! The fault proxy itself, against an echo server on loopback.

use std::time::Duration;

use integration_tests::proxy::{Fault, Proxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn echo_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0; 1024];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// Sends `msg` and reads the echo, giving up after `limit`.
async fn round_trip(
    stream: &mut TcpStream,
    msg: &[u8],
    limit: Duration,
) -> std::io::Result<Vec<u8>> {
    let work = async {
        stream.write_all(msg).await?;
        let mut got = vec![0; msg.len()];
        stream.read_exact(&mut got).await?;
        Ok(got)
    };
    tokio::time::timeout(limit, work)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

#[tokio::test]
async fn each_fault_does_what_it_says() {
    let proxy = Proxy::start(echo_server().await).await;
    let second = Duration::from_secs(1);

    let mut conn = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(
        round_trip(&mut conn, b"hello", second).await.unwrap(),
        b"hello"
    );

    proxy.set(Fault::Latency(Duration::from_millis(100)));
    let started = std::time::Instant::now();
    assert_eq!(
        round_trip(&mut conn, b"slow", second).await.unwrap(),
        b"slow"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "both ways delayed"
    );

    proxy.set(Fault::BlackHole);
    let quiet = Duration::from_millis(300);
    let err = round_trip(&mut conn, b"anyone?", quiet).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    let mut fresh = TcpStream::connect(proxy.addr())
        .await
        .expect("a black hole still accepts");
    let err = round_trip(&mut fresh, b"anyone?", quiet).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);

    proxy.set(Fault::Reset);
    let mut reset = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(round_trip(&mut reset, b"x", second).await.is_err());

    proxy.set(Fault::CutAfter(6));
    let mut cut = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(round_trip(&mut cut, b"abc", second).await.unwrap(), b"abc");
    assert!(
        round_trip(&mut cut, b"defg", second).await.is_err(),
        "cut after 6 bytes"
    );

    proxy.set(Fault::Pass);
    let mut again = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(
        round_trip(&mut again, b"back", second).await.unwrap(),
        b"back"
    );
    proxy.cut_all();
    assert!(round_trip(&mut again, b"gone", second).await.is_err());
    assert!(proxy.accepted() >= 5);
}
