//! The TLS step of a listener's stack: the live (reloadable) server
//! configuration and the handshake.

use std::sync::Arc;

use super::config::TlsConfig;
use super::flush::FlushOnRead;
use super::reload::TlsReloader;
use super::{BoxedStream, Reloadable, TlsInfo, tls};

/// The TLS step of a listener's stack: the live configuration and the handshake.
#[derive(Debug, Clone)]
pub(crate) struct TlsStage {
    reloader: Arc<TlsReloader>,
}

impl TlsStage {
    /// Loads the listener's certificates; `name` is `scheme://address`.
    pub(crate) fn load(name: String, config: &TlsConfig, quic: bool) -> Result<Self, String> {
        let reloader = TlsReloader::load(name, config, quic).map_err(|e| e.0)?;
        Ok(Self { reloader })
    }

    /// Handshakes on `stream`; the result flushes eagerly (see `transport/flush.rs`).
    pub(crate) async fn accept(
        &self,
        stream: BoxedStream,
    ) -> std::io::Result<(BoxedStream, TlsInfo)> {
        let (tls, info) = tls::accept(self.reloader.current(), stream).await?;
        Ok((Box::new(FlushOnRead::new(tls)), info))
    }

    /// The reload handle given to `BrokerHandle::reload_tls`.
    pub(crate) fn reloader(&self) -> Arc<dyn Reloadable> {
        Arc::clone(&self.reloader) as Arc<dyn Reloadable>
    }

    /// Starts the file watcher.
    pub(crate) fn watch(&self, shutdown: tokio::sync::watch::Receiver<bool>) {
        self.reloader.spawn_watcher(shutdown);
    }
}
