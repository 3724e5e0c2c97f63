//! The byte stream a client speaks MQTT over: plain TCP (the default, and
//! the cheapest), TLS (`-S`), WebSocket (`--ws`) or both (WSS).
//!
//! Plain TCP keeps tokio's own stream and its lock-free owned halves, so
//! the default path costs what it did before the other transports existed.
//! The layered ones are boxed and split with `tokio::io::split`.
//!
//! Like emqtt-bench, `-S` does not verify the broker's certificate unless
//! `--cacertfile` is given (benchmarks run against test certificates); the
//! handshake signatures are still checked, so the TLS work is the real one.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::{Context as _, bail};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::args::CommonArgs;

/// A WebSocket client's read buffer (tungstenite zero-fills all of it, so
/// it is resident for every client).
const WS_READ_BUFFER: usize = 16 * 1024;

/// A byte stream of any layered transport.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// How every client of a run reaches the broker, built once from the flags.
#[derive(Clone)]
pub struct Transport {
    tls: Option<Tls>,
    /// The WebSocket path (`--ws`).
    ws_path: Option<String>,
}

#[derive(Clone)]
struct Tls {
    connector: tokio_rustls::TlsConnector,
    server_name: ServerName<'static>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("tls", &self.tls.as_ref().map(|t| &t.server_name))
            .field("ws_path", &self.ws_path)
            .finish()
    }
}

impl Transport {
    /// Plain TCP.
    pub fn tcp() -> Self {
        Self {
            tls: None,
            ws_path: None,
        }
    }

    /// From `-S`, `--ws` and their options; the files are read now, so a bad
    /// one fails the run before any client connects.
    pub fn from_args(common: &CommonArgs) -> anyhow::Result<Self> {
        let tls_files = [&common.cacertfile, &common.certfile, &common.keyfile];
        if !common.ssl && tls_files.iter().any(|f| f.is_some()) {
            bail!("--cacertfile, --certfile and --keyfile need -S (TLS)");
        }
        let tls = if common.ssl {
            let name = match &common.sni {
                Some(name) => name.clone(),
                None => common.hosts.first().cloned().unwrap_or_default(),
            };
            let server_name = ServerName::try_from(name.trim().to_owned())
                .with_context(|| format!("{name:?} is not a TLS server name (see --sni)"))?;
            Some(Tls {
                connector: tokio_rustls::TlsConnector::from(Arc::new(tls_config(common)?)),
                server_name,
            })
        } else {
            None
        };
        let ws_path = common.ws.then(|| {
            if common.ws_path.starts_with('/') {
                common.ws_path.clone()
            } else {
                format!("/{}", common.ws_path)
            }
        });
        Ok(Self { tls, ws_path })
    }

    /// Layers TLS and WebSocket, as configured, on a connected socket.
    pub async fn establish(&self, tcp: TcpStream) -> anyhow::Result<Stream> {
        let peer = tcp.peer_addr().context("peer address")?;
        let stream: Box<dyn Io> = match (&self.tls, &self.ws_path) {
            (None, None) => return Ok(Stream::Tcp(tcp)),
            (Some(tls), None) => Box::new(handshake_tls(tls, tcp).await?),
            (None, Some(path)) => {
                let url = format!("ws://{peer}{path}");
                Box::new(handshake_ws(&url, tcp).await?)
            }
            (Some(tls), Some(path)) => {
                let url = format!("wss://{peer}{path}");
                let tls_stream = handshake_tls(tls, tcp).await?;
                Box::new(handshake_ws(&url, tls_stream).await?)
            }
        };
        Ok(Stream::Layered(stream))
    }
}

async fn handshake_tls(
    tls: &Tls,
    tcp: TcpStream,
) -> anyhow::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    tls.connector
        .connect(tls.server_name.clone(), tcp)
        .await
        .context("TLS handshake")
}

/// The WebSocket upgrade, offering the `mqtt` subprotocol [MQTT-6.0.0-3].
async fn handshake_ws<S>(url: &str, stream: S) -> anyhow::Result<roost_ws::WsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut request = url
        .into_client_request()
        .with_context(|| format!("WebSocket URL {url}"))?;
    request
        .headers_mut()
        .insert("sec-websocket-protocol", HeaderValue::from_static("mqtt"));
    // tungstenite allocates its read buffer up front: 128 KiB by default,
    // too much per client when a run holds thousands.
    let config = WebSocketConfig::default().read_buffer_size(WS_READ_BUFFER);
    let (ws, _response) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config))
            .await
            .with_context(|| format!("WebSocket upgrade at {url}"))?;
    Ok(roost_ws::WsStream::new(ws))
}

fn tls_config(common: &CommonArgs) -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match &common.cacertfile {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            let mut listed = Vec::new();
            for cert in CertificateDer::pem_file_iter(path)
                .with_context(|| format!("--cacertfile {path}"))?
            {
                let cert = cert.with_context(|| format!("--cacertfile {path}"))?;
                roots
                    .add(cert.clone())
                    .with_context(|| format!("--cacertfile {path}: not a CA certificate"))?;
                listed.push(cert);
            }
            if roots.is_empty() {
                bail!("--cacertfile {path}: no certificate in it");
            }
            let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                Arc::clone(&provider),
            )
            .build()
            .with_context(|| format!("--cacertfile {path}"))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ListedOrChained { listed, webpki }))
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate {
                algorithms: provider.signature_verification_algorithms,
            })),
    };
    match (&common.certfile, &common.keyfile) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .with_context(|| format!("--certfile {cert}"))?
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("--certfile {cert}"))?;
            let key =
                PrivateKeyDer::from_pem_file(key).with_context(|| format!("--keyfile {key}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .context("client certificate and key")
        }
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => bail!("--certfile and --keyfile go together"),
    }
}

/// Accepts any server certificate (no `--cacertfile`), but checks the
/// handshake signatures, so that the broker does all its TLS work.
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `--cacertfile`: a server certificate chained to one of its CAs, or one
/// listed in it as it is. A plain `openssl req -x509` certificate is its own
/// CA (CA:TRUE), which WebPKI refuses as a server's (`CaUsedAsEndEntity`)
/// while OpenSSL, and so `mosquitto_sub --cafile`, trusts it.
#[derive(Debug)]
struct ListedOrChained {
    listed: Vec<CertificateDer<'static>>,
    webpki: Arc<rustls::client::WebPkiServerVerifier>,
}

impl ServerCertVerifier for ListedOrChained {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self
            .listed
            .iter()
            .any(|cert| cert.as_ref() == end_entity.as_ref())
        {
            return Ok(ServerCertVerified::assertion());
        }
        self.webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// A connected client's byte stream.
pub enum Stream {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS, WebSocket or WebSocket over TLS.
    Layered(Box<dyn Io>),
}

/// `Debug` naming the variant (a layered stream has none of its own).
macro_rules! debug_variant {
    ($ty:ty) => {
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self {
                    Self::Tcp(_) => "Tcp",
                    Self::Layered(_) => "Layered",
                })
            }
        }
    };
}

impl Stream {
    /// A reading and a writing half that can live in different tasks.
    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Self::Tcp(tcp) => {
                let (rd, wr) = tcp.into_split();
                (ReadHalf::Tcp(rd), WriteHalf::Tcp(wr))
            }
            Self::Layered(io) => {
                let (rd, wr) = tokio::io::split(io);
                (ReadHalf::Layered(rd), WriteHalf::Layered(wr))
            }
        }
    }
}

/// The reading half of a [`Stream`].
pub enum ReadHalf {
    /// Plain TCP.
    Tcp(OwnedReadHalf),
    /// A layered transport.
    Layered(tokio::io::ReadHalf<Box<dyn Io>>),
}

/// The writing half of a [`Stream`].
pub enum WriteHalf {
    /// Plain TCP.
    Tcp(OwnedWriteHalf),
    /// A layered transport.
    Layered(tokio::io::WriteHalf<Box<dyn Io>>),
}

/// `AsyncRead` by delegating to the variant's stream.
macro_rules! delegate_read {
    ($ty:ty) => {
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Tcp(s) => Pin::new(s).poll_read(cx, buf),
                    Self::Layered(s) => Pin::new(s).poll_read(cx, buf),
                }
            }
        }
    };
}

/// `AsyncWrite` by delegating to the variant's stream.
macro_rules! delegate_write {
    ($ty:ty) => {
        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    Self::Tcp(s) => Pin::new(s).poll_write(cx, buf),
                    Self::Layered(s) => Pin::new(s).poll_write(cx, buf),
                }
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    Self::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
                    Self::Layered(s) => Pin::new(s).poll_write_vectored(cx, bufs),
                }
            }

            fn is_write_vectored(&self) -> bool {
                match self {
                    Self::Tcp(s) => s.is_write_vectored(),
                    Self::Layered(s) => s.is_write_vectored(),
                }
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Tcp(s) => Pin::new(s).poll_flush(cx),
                    Self::Layered(s) => Pin::new(s).poll_flush(cx),
                }
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Tcp(s) => Pin::new(s).poll_shutdown(cx),
                    Self::Layered(s) => Pin::new(s).poll_shutdown(cx),
                }
            }
        }
    };
}

/// Writes all of `bytes` and flushes: a WebSocket stream holds a message
/// until flushed; for plain TCP the flush is free.
pub async fn send<W: AsyncWrite + Unpin + ?Sized>(writer: &mut W, bytes: &[u8]) -> io::Result<()> {
    writer.write_all(bytes).await?;
    writer.flush().await
}

debug_variant!(Stream);
debug_variant!(ReadHalf);
debug_variant!(WriteHalf);
delegate_read!(Stream);
delegate_read!(ReadHalf);
delegate_write!(Stream);
delegate_write!(WriteHalf);
