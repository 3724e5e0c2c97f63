//! A tiny HTTP/1.1 service on 127.0.0.1 port 0 standing in for an HTTP
//! authentication / authorization server. One request per connection.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The request body in, status and JSON body out (may wait).
pub type Reply = Pin<Box<dyn Future<Output = (u16, String)> + Send>>;
type Handler = dyn Fn(String) -> Reply + Send + Sync;

/// A running stub: its URL and how many requests it received.
pub struct HttpStub {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicUsize>,
}

impl HttpStub {
    pub fn url(&self) -> String {
        format!("http://{}/auth", self.addr)
    }

    pub fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Serves `handler` until the test's runtime ends.
pub async fn serve(handler: impl Fn(String) -> Reply + Send + Sync + 'static) -> HttpStub {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let handler: Arc<Handler> = Arc::new(handler);
    let counter = Arc::clone(&requests);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = Arc::clone(&handler);
            let counter = Arc::clone(&counter);
            tokio::spawn(async move { answer(stream, &*handler, &counter).await });
        }
    });
    HttpStub { addr, requests }
}

/// Answers every request with `status` and `body`.
pub async fn fixed(status: u16, body: &'static str) -> HttpStub {
    serve(move |_| Box::pin(async move { (status, body.to_string()) })).await
}

async fn answer(mut stream: TcpStream, handler: &Handler, counter: &AtomicUsize) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = buf[header_end + 4..].to_vec();
    while body.len() < length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    counter.fetch_add(1, Ordering::SeqCst);
    let (status, reply) = handler(String::from_utf8_lossy(&body).into_owned()).await;
    let response = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
        reply.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// A port on 127.0.0.1 where nothing listens (bound, then released).
pub async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}
