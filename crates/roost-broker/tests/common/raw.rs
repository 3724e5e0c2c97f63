//! Raw bytes on the wire: hand-made frames the codec would refuse to write,
//! and exchanges on a bare TCP stream.

use std::net::SocketAddr;

use roost_codec::{Encoder, Packet, ProtocolVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::T;

/// One control packet from a fixed-header byte and a body (Remaining Length
/// as a variable byte integer).
pub fn framed(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut len = body.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

/// A length-prefixed string field with arbitrary bytes.
pub fn string(bytes: &[u8]) -> Vec<u8> {
    let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// `packet` as the codec writes it for `version`.
pub fn encoded(version: ProtocolVersion, packet: Packet) -> Vec<u8> {
    let mut buf = bytes::BytesMut::new();
    Encoder::new(version).encode(&packet, &mut buf).unwrap();
    buf.to_vec()
}

/// Sends raw bytes on a fresh connection and returns everything the server
/// wrote before it closed the connection.
pub async fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 256];
    loop {
        match tokio::time::timeout(T, stream.read(&mut chunk)).await {
            Err(_) => panic!("server did not close the connection; got {got:02X?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return got,
            Ok(Ok(n)) => got.extend_from_slice(&chunk[..n]),
        }
    }
}
