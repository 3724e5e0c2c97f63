//! Stand-ins for transports left out of the build by cargo features. Each is
//! an empty enum: it can never be constructed (its constructor says which
//! feature is missing), so the code that uses it compiles unchanged and its
//! methods are trivially unreachable.

#![allow(clippy::unused_async, dead_code, unused_imports)]

use std::io;
use std::sync::Arc;

use super::config::{ListenerConfig, TlsConfig, WebSocketOptions};
use super::{BoxedStream, Reloadable, TlsInfo};

fn disabled(feature: &str) -> String {
    format!(
        "this build of roost has no `{feature}` support (cargo feature `{feature}` of roost-broker)"
    )
}

/// TLS step without the `tls` feature.
#[cfg(not(feature = "tls"))]
#[derive(Debug, Clone)]
pub(crate) enum TlsStage {}

#[cfg(not(feature = "tls"))]
impl TlsStage {
    pub(crate) fn load(_name: String, _config: &TlsConfig, _quic: bool) -> Result<Self, String> {
        Err(disabled("tls"))
    }

    pub(crate) async fn accept(&self, _stream: BoxedStream) -> io::Result<(BoxedStream, TlsInfo)> {
        match *self {}
    }

    pub(crate) fn reloader(&self) -> Arc<dyn Reloadable> {
        match *self {}
    }

    pub(crate) fn watch(&self, _shutdown: tokio::sync::watch::Receiver<bool>) {
        match *self {}
    }
}

/// WebSocket step without the `websocket` feature.
#[cfg(not(feature = "websocket"))]
#[derive(Debug, Clone)]
pub(crate) enum WsStage {}

#[cfg(not(feature = "websocket"))]
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

/// QUIC listener without the `quic` feature.
#[cfg(not(feature = "quic"))]
#[derive(Debug)]
pub(crate) enum QuicListener {}

#[cfg(not(feature = "quic"))]
impl QuicListener {
    pub(crate) fn bind(
        _config: &ListenerConfig,
        _max_keep_alive: u16,
        _addr: std::net::SocketAddr,
        _name: String,
    ) -> Result<Self, super::ListenerError> {
        Err(super::ListenerError::Config(disabled("quic")))
    }

    pub(crate) fn local_addr(&self) -> std::net::SocketAddr {
        match *self {}
    }

    pub(crate) fn reloader(&self) -> Arc<dyn Reloadable> {
        match *self {}
    }
}
