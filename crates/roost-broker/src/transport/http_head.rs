//! The head of the HTTP request that opens a WebSocket connection, read and
//! checked before the WebSocket library sees it, so that every refusal (not
//! an upgrade, wrong path, wrong subprotocol, foreign origin) gets a proper
//! HTTP status instead of a silently closed socket.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest request head accepted (request line and headers).
const MAX_HEAD: usize = 8 * 1024;
/// Most header lines accepted.
const MAX_HEADERS: usize = 64;

/// A parsed request head.
#[derive(Debug)]
pub(crate) struct RequestHead {
    /// The request method (`GET`).
    pub(crate) method: String,
    /// The path, without the query string.
    pub(crate) path: String,
    /// Header names (lower-case) and values, in order.
    pub(crate) headers: Vec<(String, String)>,
}

impl RequestHead {
    /// The first value of a header.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every comma-separated token of a header that may repeat, e.g.
    /// `Sec-WebSocket-Protocol: mqtt, mqttv3.1`.
    pub(crate) fn tokens(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// Whether a header holds a token, case-insensitively (`Connection: keep-alive, Upgrade`).
    pub(crate) fn has_token(&self, name: &str, token: &str) -> bool {
        self.tokens(name)
            .iter()
            .any(|t| t.eq_ignore_ascii_case(token))
    }
}

/// Why no request head could be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HeadError {
    /// The connection closed or failed first.
    #[error("connection closed before the HTTP request was complete")]
    Closed,
    /// The request is not HTTP/1.1 or too large; answer 400.
    #[error("bad HTTP request: {0}")]
    Bad(&'static str),
}

/// Reads a request head. Returns it, its raw bytes, and anything read beyond it.
pub(crate) async fn read<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<(RequestHead, BytesMut, BytesMut), HeadError> {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let raw = buf.split_to(end + 4);
            let head = parse(&raw)?;
            return Ok((head, raw, buf));
        }
        if buf.len() >= MAX_HEAD {
            return Err(HeadError::Bad("request head larger than 8 KiB"));
        }
        if buf.len() >= 4
            && !buf
                .iter()
                .take(16)
                .all(|b| b.is_ascii_graphic() || *b == b' ' || *b == b'\r' || *b == b'\n')
        {
            // Binary bytes: not HTTP at all (an MQTT client on the WebSocket port).
            return Err(HeadError::Bad("not an HTTP request"));
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return Err(HeadError::Closed),
            Ok(_) => {}
        }
    }
}

fn parse(raw: &[u8]) -> Result<RequestHead, HeadError> {
    let text = std::str::from_utf8(raw).map_err(|_| HeadError::Bad("request head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Bad("malformed request line"));
    };
    if version != "HTTP/1.1" {
        return Err(HeadError::Bad("not HTTP/1.1"));
    }
    let path = target
        .split_once('?')
        .map_or(target, |(path, _)| path)
        .to_string();
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Err(HeadError::Bad("malformed header line"));
        };
        if headers.len() == MAX_HEADERS {
            return Err(HeadError::Bad("too many headers"));
        }
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok(RequestHead {
        method: method.to_string(),
        path,
        headers,
    })
}

/// Answers with an error status and closes the write side.
pub(crate) async fn refuse<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: u16,
    reason: &str,
    extra_headers: &str,
    body: &str,
) {
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{extra_headers}\r\n{body}\n",
        body.len() + 1
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_the_head_and_keeps_what_follows() {
        let request = b"GET /mqtt?x=1 HTTP/1.1\r\nHost: a\r\nSec-WebSocket-Protocol: mqtt, mqttv3.1\r\nConnection: keep-alive, Upgrade\r\n\r\n\x82\x00";
        let mut input = &request[..];
        let read = read(&mut input).await;
        let Ok((head, raw, rest)) = read else {
            panic!("head not read: {read:?}")
        };
        assert_eq!(head.method, "GET");
        assert_eq!(head.path, "/mqtt");
        assert_eq!(head.header("host"), Some("a"));
        assert_eq!(
            head.tokens("sec-websocket-protocol"),
            vec!["mqtt", "mqttv3.1"]
        );
        assert!(head.has_token("connection", "upgrade"));
        assert_eq!(raw.len(), request.len() - 2);
        assert_eq!(&rest[..], b"\x82\x00");
    }

    #[tokio::test]
    async fn binary_and_oversized_input_is_refused() {
        let mut connect = &[0x10u8, 0x0c, 0x00, 0x04, b'M', b'Q', b'T', b'T'][..];
        assert!(matches!(read(&mut connect).await, Err(HeadError::Bad(_))));
        let big = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 9000]].concat();
        assert!(matches!(read(&mut &big[..]).await, Err(HeadError::Bad(_))));
        assert!(matches!(
            read(&mut &b"GET / HTTP/1.1\r\n"[..]).await,
            Err(HeadError::Closed)
        ));
        assert!(matches!(
            read(&mut &b"GET / HTTP/1.0\r\n\r\n"[..]).await,
            Err(HeadError::Bad(_))
        ));
    }
}
