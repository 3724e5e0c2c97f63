//! Shared helpers of the transport tests: certificates made at test time
//! (rcgen, no secrets committed), an in-process broker with any listeners,
//! a small MQTT client over any byte stream (roost-codec), TLS / WebSocket /
//! QUIC client connectors, and log capture.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use roost_broker::config::ListenerKind;
use roost_broker::{BoundAddress, Broker, BrokerHandle, Config};
use roost_codec::{ConnAck, Decoder, Encoder, Packet, ProtocolVersion, Publish, QoS};
use roost_testkit::packets;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bound for every wait.
pub const T: Duration = Duration::from_secs(10);

// ------------------------------------------------------------------ broker

/// A running in-process broker; shuts down on drop.
pub struct TestBroker {
    pub handle: BrokerHandle,
    pub listeners: Vec<BoundAddress>,
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

impl TestBroker {
    /// The bound socket address of the first listener of `kind`.
    pub fn addr(&self, kind: ListenerKind) -> SocketAddr {
        self.listeners
            .iter()
            .find(|l| l.kind == kind)
            .and_then(|l| l.addr.inet())
            .unwrap_or_else(|| panic!("no {kind} listener in {:?}", self.listeners))
    }
}

/// Starts a broker from a whole TOML config (listeners on port 0).
pub async fn start(toml: &str) -> TestBroker {
    let config = Config::from_toml(toml, "test").unwrap_or_else(|e| panic!("config: {e}\n{toml}"));
    start_config(config).await
}

/// Starts a broker from a config.
pub async fn start_config(config: Config) -> TestBroker {
    let broker = Broker::builder()
        .config(config)
        .bind()
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let listeners = broker.listeners();
    let handle = broker.handle();
    tokio::spawn(broker.run());
    TestBroker { handle, listeners }
}

// ------------------------------------------------------------------ MQTT over any stream

/// An MQTT client over any byte stream: sends packets, returns decoded ones.
pub struct Client<S> {
    pub stream: S,
    rbuf: BytesMut,
    decoder: Decoder,
    encoder: Encoder,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub fn new(stream: S, version: ProtocolVersion) -> Self {
        Self {
            stream,
            rbuf: BytesMut::new(),
            decoder: Decoder::client(version, 1 << 20),
            encoder: Encoder::new(version),
        }
    }

    /// CONNECT (clean, keep-alive 30) and the CONNACK, whatever it says.
    pub async fn connect(stream: S, version: ProtocolVersion, client_id: &str) -> (Self, ConnAck) {
        let mut connect = packets::connect(version, client_id);
        connect.keep_alive = 30;
        Self::connect_with(stream, Packet::Connect(Box::new(connect))).await
    }

    pub async fn connect_with(stream: S, connect: Packet) -> (Self, ConnAck) {
        let version = match &connect {
            Packet::Connect(c) => c.protocol,
            _ => ProtocolVersion::V5,
        };
        let mut client = Self::new(stream, version);
        client.send(connect).await;
        match client.recv().await {
            Some(Packet::ConnAck(ack)) => (client, ack),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    pub fn encode(&self, packet: &Packet) -> Bytes {
        let mut buf = BytesMut::new();
        self.encoder.encode(packet, &mut buf).expect("encode");
        buf.freeze()
    }

    pub async fn send(&mut self, packet: Packet) {
        let bytes = self.encode(&packet);
        self.stream.write_all(&bytes).await.expect("write");
        self.stream.flush().await.expect("flush");
    }

    /// The next packet, or None when the server closed the connection.
    pub async fn recv(&mut self) -> Option<Packet> {
        let read = async {
            loop {
                match self.decoder.decode(&mut self.rbuf) {
                    Ok(Some(packet)) => return Some(packet),
                    Ok(None) => {}
                    Err(e) => panic!("undecodable packet from the broker: {e}"),
                }
                match self.stream.read_buf(&mut self.rbuf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
        };
        tokio::time::timeout(T, read)
            .await
            .unwrap_or_else(|_| panic!("nothing from the broker within {T:?}"))
    }

    /// Subscribes at QoS 1 and waits for the SUBACK.
    pub async fn subscribe(&mut self, filter: &str) {
        self.send(Packet::Subscribe(packets::subscribe(
            1,
            filter,
            QoS::AtLeastOnce,
        )))
        .await;
        match self.recv().await {
            Some(Packet::SubAck(_)) => {}
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// Publishes at QoS 1 and waits for the PUBACK.
    pub async fn publish(&mut self, topic: &str, payload: &[u8]) {
        self.send(Packet::Publish(packets::publish(
            topic,
            Bytes::copy_from_slice(payload),
            QoS::AtLeastOnce,
            Some(7),
        )))
        .await;
        loop {
            match self.recv().await {
                Some(Packet::PubAck(_)) => return,
                Some(Packet::Publish(_)) => {}
                other => panic!("expected PUBACK, got {other:?}"),
            }
        }
    }

    /// The next PUBLISH (acknowledged when QoS 1).
    pub async fn expect_publish(&mut self) -> Publish {
        match self.recv().await {
            Some(Packet::Publish(publish)) => {
                if let Some(id) = publish.packet_id {
                    self.send(Packet::PubAck(roost_codec::PubResponse::success(id)))
                        .await;
                }
                publish
            }
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    /// Waits until the server closes the connection; returns the packets it sent first.
    pub async fn expect_closed(&mut self) -> Vec<Packet> {
        let mut seen = Vec::new();
        while let Some(packet) = self.recv().await {
            seen.push(packet);
        }
        seen
    }
}

/// A plain TCP connection.
pub async fn tcp(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).await.expect("tcp connect");
    stream.set_nodelay(true).ok();
    stream
}

/// Checks a round trip: `sub` subscribed to `topic` gets what `publisher` sends.
pub async fn round_trip<A, B>(
    publisher: &mut Client<A>,
    sub: &mut Client<B>,
    topic: &str,
    payload: &[u8],
) where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    publisher.publish(topic, payload).await;
    let got = sub.expect_publish().await;
    assert_eq!(&got.topic[..], topic);
    assert_eq!(&got.payload[..], payload);
}

// ------------------------------------------------------------------ certificates

/// A test PKI in a temporary directory: one CA, server and client certificates.
pub struct Pki {
    pub dir: tempfile::TempDir,
    ca: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    next_serial: Mutex<u64>,
}

/// Paths of a certificate and its key.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub serial: u64,
    pub der: Vec<u8>,
}

/// The key algorithm of a generated certificate.
#[derive(Debug, Clone, Copy)]
pub enum KeyKind {
    Ecdsa,
    Ed25519,
    /// 2048-bit RSA, generated with the `openssl` command.
    Rsa,
}

impl Pki {
    pub fn new(ca_name: &str) -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, ca_name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let ca = rcgen::CertifiedIssuer::self_signed(params, key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        Self {
            dir,
            ca,
            next_serial: Mutex::new(100),
        }
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn ca_der(&self) -> Vec<u8> {
        self.ca.der().to_vec()
    }

    fn key(kind: KeyKind, dir: &Path) -> rcgen::KeyPair {
        match kind {
            KeyKind::Ecdsa => rcgen::KeyPair::generate().unwrap(),
            KeyKind::Ed25519 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap(),
            KeyKind::Rsa => {
                let path = dir.join(format!("rsa-{}.pem", uuid()));
                let status = std::process::Command::new("openssl")
                    .args([
                        "genpkey",
                        "-algorithm",
                        "RSA",
                        "-pkeyopt",
                        "rsa_keygen_bits:2048",
                        "-out",
                    ])
                    .arg(&path)
                    .stderr(std::process::Stdio::null())
                    .status()
                    .expect("the RSA test needs the openssl command (Debian package openssl)");
                assert!(status.success(), "openssl genpkey failed");
                let pem = std::fs::read_to_string(&path).unwrap();
                rcgen::KeyPair::from_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256).unwrap()
            }
        }
    }

    /// Issues a certificate; `file` names the files in the directory.
    pub fn issue(
        &self,
        file: &str,
        subject: &[(rcgen::DnType, &str)],
        dns: &[&str],
        kind: KeyKind,
    ) -> CertFiles {
        let mut params =
            rcgen::CertificateParams::new(dns.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        for (ty, value) in subject {
            params.distinguished_name.push(ty.clone(), *value);
        }
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
        let serial = {
            let mut next = self.next_serial.lock().unwrap();
            *next += 1;
            *next
        };
        params.serial_number = Some(rcgen::SerialNumber::from(serial));
        let key = Self::key(kind, self.dir.path());
        let cert = params.signed_by(&key, &self.ca).unwrap();
        let cert_path = self.dir.path().join(format!("{file}.crt"));
        let key_path = self.dir.path().join(format!("{file}.key"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        CertFiles {
            cert: cert_path,
            key: key_path,
            serial,
            der: cert.der().to_vec(),
        }
    }

    /// A server certificate for `localhost` (and 127.0.0.1).
    pub fn server(&self, file: &str, kind: KeyKind) -> CertFiles {
        self.issue(
            file,
            &[(rcgen::DnType::CommonName, "localhost")],
            &["localhost"],
            kind,
        )
    }

    /// A client certificate with this CN (and O=Acme, C=DE).
    pub fn client(&self, file: &str, cn: &str) -> CertFiles {
        let subject = [
            (rcgen::DnType::CountryName, "DE"),
            (rcgen::DnType::OrganizationName, "Acme"),
            (rcgen::DnType::CommonName, cn),
        ];
        self.issue(file, &subject, &[], KeyKind::Ecdsa)
    }

    /// A CRL revoking these serial numbers.
    pub fn crl(&self, file: &str, revoked: &[u64]) -> PathBuf {
        let now = rcgen::date_time_ymd(2024, 1, 1);
        let params = rcgen::CertificateRevocationListParams {
            this_update: now,
            next_update: rcgen::date_time_ymd(2099, 1, 1),
            crl_number: rcgen::SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|serial| rcgen::RevokedCertParams {
                    serial_number: rcgen::SerialNumber::from(*serial),
                    revocation_time: now,
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.ca).unwrap();
        let path = self.dir.path().join(file);
        std::fs::write(&path, crl.pem().unwrap()).unwrap();
        path
    }
}

pub fn uuid() -> String {
    packets::unique_id("x")
}

/// A TOML path string.
pub fn p(path: &Path) -> String {
    path.display().to_string().replace('\\', "/")
}

// ------------------------------------------------------------------ TLS client

/// Client-side TLS options.
#[derive(Default)]
pub struct TlsClient {
    pub client_cert: Option<CertFiles>,
    pub tls12_only: bool,
    pub alpn: Vec<Vec<u8>>,
    pub server_name: Option<String>,
}

impl TlsClient {
    pub fn config(&self, pki: &Pki) -> rustls::ClientConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&'static rustls::SupportedProtocolVersion] = if self.tls12_only {
            &[&rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS12, &rustls::version::TLS13]
        };
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls_pki_types::CertificateDer::from(pki.ca_der()))
            .unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots);
        let mut config = match &self.client_cert {
            Some(files) => {
                use rustls_pki_types::pem::PemObject;
                let certs = rustls_pki_types::CertificateDer::pem_file_iter(&files.cert)
                    .unwrap()
                    .map(|c| c.unwrap())
                    .collect();
                let key = rustls_pki_types::PrivateKeyDer::from_pem_file(&files.key).unwrap();
                builder.with_client_auth_cert(certs, key).unwrap()
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = self.alpn.clone();
        config
    }

    /// Connects and handshakes.
    pub async fn connect(
        &self,
        pki: &Pki,
        addr: SocketAddr,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(self.config(pki)));
        let name = self
            .server_name
            .clone()
            .unwrap_or_else(|| "localhost".into());
        let name = rustls_pki_types::ServerName::try_from(name).unwrap();
        let stream = tcp(addr).await;
        let mut tls = connector.connect(name, stream).await?;
        // With TLS 1.3 a refused client certificate shows up on the first read:
        // make sure the server's verdict has arrived before handing the stream out.
        tls.flush().await?;
        Ok(tls)
    }
}

// ------------------------------------------------------------------ QUIC client

pub async fn quic_connect(
    pki: &Pki,
    addr: SocketAddr,
    tls: &TlsClient,
) -> Result<(quinn::Endpoint, quinn::Connection), String> {
    let mut config = tls.config(pki);
    if config.alpn_protocols.is_empty() {
        config.alpn_protocols = vec![b"mqtt".to_vec()];
    }
    let crypto =
        quinn::crypto::rustls::QuicClientConfig::try_from(config).map_err(|e| e.to_string())?;
    let mut endpoint = quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0)))
        .map_err(|e| e.to_string())?;
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    let connection = endpoint
        .connect(addr, "localhost")
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())?;
    Ok((endpoint, connection))
}

// ------------------------------------------------------------------ log capture

/// Everything logged (debug and up) on this thread while the guard lives.
///
/// One global subscriber writes every event into the buffer of the thread
/// that emits it, if that thread captures: per-thread scoped subscribers
/// would race with tracing's global callsite-interest cache when tests run
/// in parallel. Use a current-thread runtime so the broker's tasks log on
/// the test's thread.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

thread_local! {
    static SINK: std::cell::RefCell<Option<Arc<Mutex<Vec<u8>>>>> = const { std::cell::RefCell::new(None) };
}

struct ThreadSink;

impl std::io::Write for ThreadSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        SINK.with(|sink| {
            if let Some(buffer) = sink.borrow().as_ref() {
                buffer.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Stops capturing when dropped.
pub struct CaptureGuard;

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        SINK.with(|sink| *sink.borrow_mut() = None);
    }
}

impl Logs {
    /// Captures the logs of the current thread.
    pub fn capture() -> (Self, CaptureGuard) {
        static INIT: std::sync::Once = std::sync::Once::new();
        INIT.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::DEBUG)
                .with_ansi(false)
                .with_writer(|| ThreadSink)
                .finish();
            let _ = tracing::subscriber::set_global_default(subscriber);
        });
        let logs = Self::default();
        SINK.with(|sink| *sink.borrow_mut() = Some(Arc::clone(&logs.0)));
        (logs, CaptureGuard)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Waits (bounded) until the logs contain `needle`.
    pub async fn wait_for(&self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + T;
        loop {
            let text = self.text();
            if text.contains(needle) {
                return text;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no log line with {needle:?} within {T:?}; logs:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Waits (bounded) until `check` holds.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + T;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {T:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The first listener of a kind, for TOML snippets.
pub fn listener(kind: &str, extra: &str) -> String {
    format!("[[listeners]]\nkind = \"{kind}\"\nbind = \"127.0.0.1:0\"\n{extra}\n")
}
