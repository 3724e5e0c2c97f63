//! PROXY protocol v1 (text) and v2 (binary) headers, as sent by HAProxy,
//! AWS NLB, nginx and others in front of the broker: the real client address
//! arrives before the first byte of the proxied connection.
//! Specification: <https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt>.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The 12-byte signature that opens a v2 header.
const V2_SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];
/// A v1 header is at most 107 bytes, CRLF included.
const V1_MAX: usize = 107;
/// Largest v2 header accepted (addresses and TLVs); real ones are far smaller.
const V2_MAX: usize = 4096;

/// What a PROXY header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProxyHeader {
    /// The original client address; None for `LOCAL` (health checks),
    /// `UNKNOWN` and non-IP families: the socket's own address then applies.
    pub(crate) source: Option<SocketAddr>,
}

/// Why a connection's PROXY header was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum ProxyError {
    /// The connection does not start with a PROXY header.
    #[error("no PROXY protocol header")]
    Missing,
    /// The header is malformed.
    #[error("malformed PROXY protocol header: {0}")]
    Malformed(&'static str),
    /// The connection closed or failed before the header was complete.
    #[error("connection closed inside the PROXY protocol header")]
    Truncated,
}

/// Reads a PROXY header from `stream`. Returns it with whatever was read
/// beyond it, which belongs to the proxied connection.
pub(crate) async fn read_header<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<(ProxyHeader, BytesMut), ProxyError> {
    let mut buf = BytesMut::with_capacity(256);
    loop {
        if let Some((header, len)) = parse(&buf)? {
            buf.advance(len);
            return Ok((header, buf));
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return Err(ProxyError::Truncated),
            Ok(_) => {}
        }
    }
}

/// Parses a header at the start of `buf`: `Ok(None)` = need more bytes,
/// otherwise the header and its length.
pub(crate) fn parse(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf[..n] == V2_SIGNATURE[..n] {
        return if n < V2_SIGNATURE.len() {
            Ok(None)
        } else {
            parse_v2(buf)
        };
    }
    let n = buf.len().min(6);
    if buf[..n] == b"PROXY "[..n] {
        return if n < 6 { Ok(None) } else { parse_v1(buf) };
    }
    Err(ProxyError::Missing)
}

fn parse_v1(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() >= V1_MAX {
            Err(ProxyError::Malformed("v1 line longer than 107 bytes"))
        } else {
            Ok(None)
        };
    };
    let line = std::str::from_utf8(&buf[..end])
        .map_err(|_| ProxyError::Malformed("v1 line is not ASCII"))?;
    let mut fields = line.split(' ');
    let _proxy = fields.next();
    let header = match fields.next() {
        Some("UNKNOWN") => ProxyHeader { source: None },
        Some(family @ ("TCP4" | "TCP6")) => {
            let (Some(src), Some(_dst), Some(sport), Some(_dport), None) = (
                fields.next(),
                fields.next(),
                fields.next(),
                fields.next(),
                fields.next(),
            ) else {
                return Err(ProxyError::Malformed("v1 line needs 4 address fields"));
            };
            let ip: IpAddr = src
                .parse()
                .map_err(|_| ProxyError::Malformed("v1 source address"))?;
            if ip.is_ipv4() != (family == "TCP4") {
                return Err(ProxyError::Malformed(
                    "v1 address does not match its family",
                ));
            }
            let port: u16 = sport
                .parse()
                .map_err(|_| ProxyError::Malformed("v1 source port"))?;
            ProxyHeader {
                source: Some(SocketAddr::new(ip, port)),
            }
        }
        _ => {
            return Err(ProxyError::Malformed(
                "v1 family is not TCP4, TCP6 or UNKNOWN",
            ));
        }
    };
    Ok(Some((header, end + 2)))
}

fn parse_v2(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    if buf.len() < 16 {
        return Ok(None);
    }
    let version_command = buf[12];
    if version_command >> 4 != 2 {
        return Err(ProxyError::Malformed("v2 version is not 2"));
    }
    let local = match version_command & 0x0F {
        0 => true,
        1 => false,
        _ => return Err(ProxyError::Malformed("v2 command is not LOCAL or PROXY")),
    };
    let family = buf[13];
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let total = 16 + len;
    if total > V2_MAX {
        return Err(ProxyError::Malformed("v2 header too long"));
    }
    if buf.len() < total {
        return Ok(None);
    }
    let body = &buf[16..total];
    if local {
        return Ok(Some((ProxyHeader { source: None }, total)));
    }
    let source = match family >> 4 {
        0x1 => {
            let b: &[u8; 12] = body
                .get(..12)
                .and_then(|s| s.try_into().ok())
                .ok_or(ProxyError::Malformed("v2 IPv4 addresses too short"))?;
            let ip = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
            Some(SocketAddr::new(
                IpAddr::V4(ip),
                u16::from_be_bytes([b[8], b[9]]),
            ))
        }
        0x2 => {
            let b: &[u8; 36] = body
                .get(..36)
                .and_then(|s| s.try_into().ok())
                .ok_or(ProxyError::Malformed("v2 IPv6 addresses too short"))?;
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&b[..16]);
            Some(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(octets)),
                u16::from_be_bytes([b[32], b[33]]),
            ))
        }
        // UNSPEC and UNIX: no IP to report; the socket's address stands.
        0x0 | 0x3 => None,
        _ => return Err(ProxyError::Malformed("v2 address family unknown")),
    };
    Ok(Some((ProxyHeader { source }, total)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.push(0x20 | command);
        out.push(family);
        out.extend_from_slice(&u16::try_from(body.len()).unwrap_or(0).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn v1_tcp4_gives_the_source_address_and_its_length() {
        let line = b"PROXY TCP4 192.0.2.7 198.51.100.1 51000 1883\r\n\x10rest";
        let (header, len) = parse(line)
            .ok()
            .flatten()
            .unwrap_or((ProxyHeader { source: None }, 0));
        assert_eq!(
            header.source,
            Some(
                "192.0.2.7:51000"
                    .parse()
                    .unwrap_or(SocketAddr::from(([0; 4], 0)))
            )
        );
        assert_eq!(&line[len..], b"\x10rest");
    }

    #[test]
    fn v1_tcp6_and_unknown() {
        let line = b"PROXY TCP6 2001:db8::1 2001:db8::2 4000 8883\r\n";
        let parsed = parse(line).ok().flatten().map(|(h, _)| h.source);
        assert_eq!(
            parsed,
            Some(Some(
                "[2001:db8::1]:4000"
                    .parse()
                    .unwrap_or(SocketAddr::from(([0; 4], 0)))
            ))
        );
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\n")
                .ok()
                .flatten()
                .map(|(h, n)| (h.source, n)),
            Some((None, 15))
        );
    }

    #[test]
    fn partial_headers_ask_for_more() {
        assert_eq!(parse(b"PRO"), Ok(None));
        assert_eq!(parse(b"PROXY TCP4 192.0.2.7"), Ok(None));
        assert_eq!(parse(&V2_SIGNATURE[..5]), Ok(None));
        let full = v2(1, 0x11, &[10, 0, 0, 1, 10, 0, 0, 2, 0x1F, 0x90, 0x07, 0x5B]);
        assert_eq!(parse(&full[..20]), Ok(None));
    }

    #[test]
    fn v2_inet_and_inet6_proxy_commands() {
        let full = v2(1, 0x11, &[10, 0, 0, 1, 10, 0, 0, 2, 0x1F, 0x90, 0x07, 0x5B]);
        let (header, len) = parse(&full)
            .ok()
            .flatten()
            .unwrap_or((ProxyHeader { source: None }, 0));
        assert_eq!(header.source, Some(SocketAddr::from(([10, 0, 0, 1], 8080))));
        assert_eq!(len, full.len());
        let mut body = vec![0u8; 36];
        body[15] = 1; // ::1
        body[32..34].copy_from_slice(&4242u16.to_be_bytes());
        let full = v2(1, 0x21, &body);
        let source = parse(&full).ok().flatten().and_then(|(h, _)| h.source);
        assert_eq!(source, Some(SocketAddr::from((Ipv6Addr::LOCALHOST, 4242))));
    }

    #[test]
    fn v2_local_and_tlvs_keep_the_socket_address() {
        let full = v2(0, 0x00, &[]);
        assert_eq!(
            parse(&full).ok().flatten().map(|(h, n)| (h.source, n)),
            Some((None, 16))
        );
        // PROXY with TLVs after the addresses: the TLVs are skipped.
        let mut body = vec![127, 0, 0, 1, 127, 0, 0, 1, 0, 1, 0, 2];
        body.extend_from_slice(&[0x04, 0x00, 0x02, b'h', b'i']);
        let full = v2(1, 0x11, &body);
        assert_eq!(
            parse(&full).ok().flatten().map(|(_, n)| n),
            Some(full.len())
        );
    }

    #[test]
    fn mqtt_bytes_and_bad_headers_are_refused() {
        // A CONNECT packet where a PROXY header was expected.
        assert_eq!(parse(&[0x10, 0x0C, 0x00, 0x04]), Err(ProxyError::Missing));
        assert!(matches!(
            parse(b"PROXY TCP5 a b c d\r\n"),
            Err(ProxyError::Malformed(_))
        ));
        assert!(matches!(
            parse(b"PROXY TCP4 ::1 ::1 1 2\r\n"),
            Err(ProxyError::Malformed(_))
        ));
        assert!(matches!(
            parse(&[b"PROXY TCP4 ".as_slice(), &[b'1'; 120]].concat()),
            Err(ProxyError::Malformed(_))
        ));
        let mut wrong_version = v2(1, 0x11, &[0; 12]);
        wrong_version[12] = 0x31;
        assert!(matches!(
            parse(&wrong_version),
            Err(ProxyError::Malformed(_))
        ));
        assert!(matches!(
            parse(&v2(1, 0x11, &[0; 4])),
            Err(ProxyError::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn read_header_returns_the_bytes_after_it() {
        let (mut tx, mut rx) = tokio::io::duplex(256);
        let sender = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let _ = tx
                .write_all(b"PROXY TCP4 192.0.2.7 198.51.100.1 51000 1883\r")
                .await;
            let _ = tx.write_all(b"\n\x10\x00").await;
        });
        let read = read_header(&mut rx).await;
        let _ = sender.await;
        let (header, rest) = read.unwrap_or((ProxyHeader { source: None }, BytesMut::new()));
        assert_eq!(header.source.map(|a| a.port()), Some(51000));
        assert_eq!(&rest[..], b"\x10\x00");
    }
}
