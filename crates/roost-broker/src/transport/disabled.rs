//! Stand-ins for transports left out of the build by cargo features. Each is
//! an empty enum: it can never be constructed (its constructor says which
//! feature is missing), so the code that uses it compiles unchanged and its
//! methods are trivially unreachable. One module per feature, each with its
//! own imports, so every feature-off build is warning-free
//! (`scripts/check-features.sh` builds them all).

#[cfg(not(feature = "quic"))]
pub(crate) use quic::QuicListener;
#[cfg(not(feature = "tls"))]
pub(crate) use tls::TlsStage;
#[cfg(not(feature = "websocket"))]
pub(crate) use websocket::WsStage;

fn disabled(feature: &str) -> String {
    format!(
        "this build of roost has no `{feature}` support (cargo feature `{feature}` of roost-broker)"
    )
}

#[cfg(not(feature = "tls"))]
mod tls {
    use std::io;
    use std::sync::Arc;

    use super::disabled;
    use crate::transport::config::TlsConfig;
    use crate::transport::{BoxedStream, Reloadable, TlsInfo};

    /// TLS step without the `tls` feature.
    #[derive(Debug, Clone)]
    pub(crate) enum TlsStage {}

    impl TlsStage {
        pub(crate) fn load(
            _name: String,
            _config: &TlsConfig,
            _quic: bool,
        ) -> Result<Self, String> {
            Err(disabled("tls"))
        }

        pub(crate) async fn accept(
            &self,
            _stream: BoxedStream,
        ) -> io::Result<(BoxedStream, TlsInfo)> {
            match *self {}
        }

        pub(crate) fn reloader(&self) -> Arc<dyn Reloadable> {
            match *self {}
        }

        pub(crate) fn watch(&self, _shutdown: tokio::sync::watch::Receiver<bool>) {
            match *self {}
        }
    }
}

#[cfg(not(feature = "websocket"))]
mod websocket {
    use super::disabled;
    use crate::transport::BoxedStream;
    use crate::transport::config::WebSocketOptions;

    /// WebSocket step without the `websocket` feature.
    #[derive(Debug, Clone)]
    pub(crate) enum WsStage {}

    impl WsStage {
        pub(crate) fn new(_options: &WebSocketOptions) -> Result<Self, String> {
            Err(disabled("websocket"))
        }

        pub(crate) async fn accept(
            &self,
            _stream: BoxedStream,
            _peer: Option<std::net::SocketAddr>,
        ) -> Result<(BoxedStream, Option<std::net::IpAddr>), String> {
            match *self {}
        }
    }
}

#[cfg(not(feature = "quic"))]
mod quic {
    use std::sync::Arc;

    use super::disabled;
    use crate::transport::Reloadable;
    use crate::transport::config::ListenerConfig;

    /// QUIC listener without the `quic` feature.
    #[derive(Debug)]
    pub(crate) enum QuicListener {}

    impl QuicListener {
        pub(crate) fn bind(
            _config: &ListenerConfig,
            _max_keep_alive: u16,
            _addr: std::net::SocketAddr,
            _name: String,
        ) -> Result<Self, crate::transport::ListenerError> {
            Err(crate::transport::ListenerError::Config(disabled("quic")))
        }

        pub(crate) fn local_addr(&self) -> std::net::SocketAddr {
            match *self {}
        }

        pub(crate) fn reloader(&self) -> Arc<dyn Reloadable> {
            match *self {}
        }
    }
}
