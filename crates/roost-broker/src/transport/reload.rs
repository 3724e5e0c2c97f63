//! Live reload of a listener's TLS certificates. The listener reads its
//! `Arc<ServerConfig>` from an [`ArcSwap`] for every new handshake; a reload
//! builds a new one from the files and swaps it in. Established connections
//! keep the session they negotiated and are not touched. A reload that fails
//! (a half-written file, a key that does not match) keeps the old
//! configuration and says why.
//!
//! Triggers: SIGHUP (the binary calls `BrokerHandle::reload_tls`), and a
//! watcher that polls the files' size and modification time every
//! `tls.watch_interval_secs` (polling, not inotify: it also sees Kubernetes'
//! symlink swaps and costs a few `stat` calls).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use tokio::sync::watch;

use super::config::TlsConfig;
use super::tls::{TlsError, server_config};

/// Called with each newly loaded configuration (QUIC hands it to its endpoint).
pub(crate) type OnReload = Box<dyn Fn(Arc<ServerConfig>) -> Result<(), String> + Send + Sync>;

/// The live TLS configuration of one listener.
pub(crate) struct TlsReloader {
    /// `scheme://address` of the listener, for logs and errors.
    name: String,
    config: TlsConfig,
    quic: bool,
    current: ArcSwap<ServerConfig>,
    on_reload: parking_lot::Mutex<Option<OnReload>>,
    /// Size and modification time of the files at the last load attempt.
    loaded: parking_lot::Mutex<Fingerprint>,
}

/// Size and modification time of each file (None when unreadable).
type Fingerprint = Vec<Option<(u64, SystemTime)>>;

impl std::fmt::Debug for TlsReloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsReloader")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl TlsReloader {
    /// Loads the configuration for the first time.
    pub(crate) fn load(
        name: String,
        config: &TlsConfig,
        quic: bool,
    ) -> Result<Arc<Self>, TlsError> {
        let loaded = fingerprint(&config.files());
        // The caller's error names the listener already (`listener mqtts://…: …`).
        let current = server_config(config, quic)?;
        Ok(Arc::new(Self {
            name,
            config: config.clone(),
            quic,
            current: ArcSwap::new(current),
            on_reload: parking_lot::Mutex::new(None),
            loaded: parking_lot::Mutex::new(loaded),
        }))
    }

    /// Sets what else must learn about a new configuration (a QUIC
    /// endpoint, which keeps its own copy).
    #[cfg(feature = "quic")]
    pub(crate) fn set_on_reload(&self, on_reload: OnReload) {
        *self.on_reload.lock() = Some(on_reload);
    }

    /// The configuration for the next handshake.
    pub(crate) fn current(&self) -> Arc<ServerConfig> {
        self.current.load_full()
    }

    /// The listener this belongs to.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Re-reads the files and swaps the new configuration in; on error the
    /// old one stays.
    pub(crate) fn reload(&self) -> Result<(), String> {
        // Taken before reading: a change during the read is seen by the next check.
        *self.loaded.lock() = fingerprint(&self.config.files());
        let fresh =
            server_config(&self.config, self.quic).map_err(|e| format!("{}: {e}", self.name))?;
        if let Some(on_reload) = self.on_reload.lock().as_ref() {
            on_reload(Arc::clone(&fresh)).map_err(|e| format!("{}: {e}", self.name))?;
        }
        self.current.store(fresh);
        tracing::info!(listener = %self.name, "TLS certificates reloaded");
        Ok(())
    }

    /// Polls the files every `tls.watch_interval_secs` and reloads when one
    /// changed, until shutdown. No task when the interval is 0.
    pub(crate) fn spawn_watcher(self: &Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        if self.config.watch_interval_secs == 0 {
            return;
        }
        let interval = Duration::from_secs(self.config.watch_interval_secs);
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let files = this.config.files();
            loop {
                tokio::select! {
                    _ = shutdown.changed() => break,
                    () = tokio::time::sleep(interval) => {}
                }
                if fingerprint(&files) == *this.loaded.lock() {
                    continue;
                }
                if let Err(e) = this.reload() {
                    tracing::warn!(listener = %this.name, error = %e, "certificate files changed but cannot be loaded; keeping the previous certificates");
                }
            }
        });
    }
}

/// Size and modification time of each file: a few `stat` calls, cheap
/// enough to run on the runtime's thread.
fn fingerprint(files: &[PathBuf]) -> Fingerprint {
    files
        .iter()
        .map(|file| {
            std::fs::metadata(file)
                .ok()
                .and_then(|m| Some((m.len(), m.modified().ok()?)))
        })
        .collect()
}

impl super::Reloadable for TlsReloader {
    fn reload(&self) -> Result<(), String> {
        TlsReloader::reload(self)
    }

    fn name(&self) -> &str {
        TlsReloader::name(self)
    }
}
