//! MQTT over QUIC with quinn: ALPN `mqtt`, one bidirectional stream per
//! connection carrying MQTT exactly as TCP would (EMQX's single-stream mode).
//! The TLS configuration is the listener's `tls` table, forced to TLS 1.3,
//! and reloads like any other TLS listener's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{HandshakeData, QuicServerConfig};
use quinn::{Endpoint, IdleTimeout, TransportConfig, VarInt};
use rustls_pki_types::CertificateDer;

use super::config::{ListenerConfig, ListenerKind};
use super::reload::TlsReloader;
use super::{ConnectionInfo, ListenerError, PeerAddr, Reloadable, TlsInfo, identity};

/// How long a connection whose MQTT side ended waits for the client to close
/// the QUIC connection (so the last packets are delivered) before closing it.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// A bound QUIC endpoint.
#[derive(Debug)]
pub(crate) struct QuicListener {
    endpoint: Endpoint,
    tls: Arc<TlsReloader>,
    local: SocketAddr,
}

impl QuicListener {
    /// Binds the UDP socket; `name` is `quic://address` for logs.
    pub(crate) fn bind(
        config: &ListenerConfig,
        max_keep_alive: u16,
        addr: SocketAddr,
        name: String,
    ) -> Result<Self, ListenerError> {
        let tls_config = config
            .tls
            .as_ref()
            .ok_or_else(|| ListenerError::Config(format!("{name}: a QUIC listener needs `tls`")))?;
        let tls =
            TlsReloader::load(name, tls_config, true).map_err(|e| ListenerError::Config(e.0))?;
        let idle = idle_timeout(config, max_keep_alive);
        let server = quinn_config(tls.current(), idle).map_err(ListenerError::Config)?;
        let endpoint = Endpoint::server(server, addr)?;
        let local = endpoint.local_addr()?;
        let for_reload = endpoint.clone();
        tls.set_on_reload(Box::new(move |fresh| {
            for_reload.set_server_config(Some(quinn_config(fresh, idle)?));
            Ok(())
        }));
        Ok(Self {
            endpoint,
            tls,
            local,
        })
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub(crate) fn reloader(&self) -> Arc<dyn Reloadable> {
        Arc::clone(&self.tls) as Arc<dyn Reloadable>
    }

    /// Starts reloading the certificate on change, until `shutdown`.
    pub(crate) fn watch_reloads(&self, shutdown: tokio::sync::watch::Receiver<bool>) {
        self.tls.spawn_watcher(shutdown);
    }

    /// The next connection attempt; `None` once the endpoint is closed.
    pub(crate) async fn accept(&self) -> Option<quinn::Incoming> {
        self.endpoint.accept().await
    }

    /// Stops accepting; established connections finish on their own.
    pub(crate) fn stop(&self) {
        self.endpoint.set_server_config(None);
    }
}

/// QUIC's idle timeout: configured, or long enough that only the MQTT
/// keep-alive (1.5 × the longest keep-alive the server allows) decides.
/// `max_keep_alive`: the server's `mqtt.max_keep_alive` (0: none).
fn idle_timeout(config: &ListenerConfig, max_keep_alive: u16) -> Duration {
    if config.quic.idle_timeout_secs > 0 {
        return Duration::from_secs(config.quic.idle_timeout_secs);
    }
    let keep_alive = if max_keep_alive > 0 {
        max_keep_alive
    } else {
        u16::MAX
    };
    Duration::from_millis(u64::from(keep_alive) * 1500)
}

fn quinn_config(
    tls: Arc<rustls::ServerConfig>,
    idle: Duration,
) -> Result<quinn::ServerConfig, String> {
    let crypto = QuicServerConfig::try_from(tls)
        .map_err(|e| format!("QUIC needs a TLS 1.3 cipher suite: {e}"))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = TransportConfig::default();
    // One bidirectional stream per connection; the client opens it.
    transport.max_concurrent_bidi_streams(VarInt::from_u32(1));
    transport.max_concurrent_uni_streams(VarInt::from_u32(0));
    let idle = IdleTimeout::try_from(idle).map_err(|e| format!("quic.idle_timeout_secs: {e}"))?;
    transport.max_idle_timeout(Some(idle));
    server.transport_config(Arc::new(transport));
    Ok(server)
}

/// An accepted QUIC connection's one MQTT stream, as a byte stream.
pub(crate) type QuicStream = tokio::io::Join<quinn::RecvStream, quinn::SendStream>;

/// Completes the handshake of `incoming` and accepts its stream, within
/// `timeout`; the error says what failed (for the log).
pub(crate) async fn open(
    incoming: quinn::Incoming,
    timeout: Duration,
) -> Result<(quinn::Connection, QuicStream, ConnectionInfo), String> {
    let remote = incoming.remote_address();
    let opened = tokio::time::timeout(timeout, async {
        let connection = incoming
            .accept()
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())?;
        let (send, recv) = connection.accept_bi().await.map_err(|e| e.to_string())?;
        Ok::<_, String>((connection, send, recv))
    })
    .await;
    let (connection, send, recv) = match opened {
        Ok(Ok(opened)) => opened,
        Ok(Err(e)) => return Err(format!("QUIC handshake failed: {e}")),
        Err(_) => return Err("QUIC handshake timed out".to_owned()),
    };
    let mut info = ConnectionInfo::new(PeerAddr::Inet(remote), ListenerKind::Quic);
    info.tls = Some(tls_info(&connection));
    Ok((connection, tokio::io::join(recv, send), info))
}

/// After the MQTT side ended: lets the client close once it has everything,
/// then closes.
pub(crate) async fn finish(connection: quinn::Connection) {
    let _ = tokio::time::timeout(CLOSE_GRACE, connection.closed()).await;
    connection.close(VarInt::from_u32(0), b"");
}

fn tls_info(connection: &quinn::Connection) -> TlsInfo {
    let handshake = connection
        .handshake_data()
        .and_then(|data| data.downcast::<HandshakeData>().ok());
    let identity = connection
        .peer_identity()
        .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
        .and_then(|chain| {
            chain
                .first()
                .and_then(|leaf| identity::client_identity(leaf))
        });
    TlsInfo {
        server_name: handshake.as_ref().and_then(|h| h.server_name.clone()),
        alpn: handshake.and_then(|h| h.protocol),
        identity,
    }
}
