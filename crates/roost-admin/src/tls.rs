//! HTTPS for the management listener: the listeners' TLS settings
//! (`[http.tls]`), with the certificate files re-read when they change
//! (checked at most every few seconds, on a new connection), and a small
//! accept loop handing each TLS stream to hyper.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use parking_lot::Mutex;
use roost_broker::config::TlsConfig;
use rustls::ServerConfig;
use tower::ServiceExt as _;

use crate::cap::CappedListener;

/// How often the certificate files' modification times are looked at.
const CHECK_EVERY: Duration = Duration::from_secs(2);
/// A TLS handshake that takes longer is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Loaded {
    config: Arc<ServerConfig>,
    modified: Vec<Option<SystemTime>>,
    checked: Instant,
}

/// The TLS settings and the server configuration loaded from them.
#[derive(Debug)]
pub(crate) struct TlsAcceptor {
    settings: TlsConfig,
    files: Vec<PathBuf>,
    loaded: Mutex<Loaded>,
}

fn modified(files: &[PathBuf]) -> Vec<Option<SystemTime>> {
    files
        .iter()
        .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
        .collect()
}

fn build(settings: &TlsConfig) -> Result<Arc<ServerConfig>, String> {
    let config = roost_broker::tls_server_config(settings)?;
    if !config.alpn_protocols.is_empty() {
        return Ok(config);
    }
    let mut config = (*config).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

impl TlsAcceptor {
    /// Loads the certificates (errors name the file).
    pub(crate) fn load(settings: &TlsConfig) -> Result<Self, String> {
        let mut files = vec![settings.cert_file.clone(), settings.key_file.clone()];
        for sni in &settings.sni {
            files.push(sni.cert_file.clone());
            files.push(sni.key_file.clone());
        }
        let config = build(settings)?;
        Ok(Self {
            loaded: Mutex::new(Loaded {
                config,
                modified: modified(&files),
                checked: Instant::now(),
            }),
            settings: settings.clone(),
            files,
        })
    }

    /// The current configuration, reloaded first when a file changed; a
    /// file that does not load keeps the previous certificates.
    fn current(&self) -> Arc<ServerConfig> {
        let mut loaded = self.loaded.lock();
        if loaded.checked.elapsed() >= CHECK_EVERY {
            loaded.checked = Instant::now();
            let now = modified(&self.files);
            if now != loaded.modified {
                loaded.modified = now;
                match build(&self.settings) {
                    Ok(config) => {
                        loaded.config = config;
                        tracing::info!("management API: TLS certificates reloaded");
                    }
                    Err(e) => tracing::warn!(
                        "management API: TLS reload failed ({e}); keeping the previous certificates"
                    ),
                }
            }
        }
        Arc::clone(&loaded.config)
    }
}

/// Accepts TLS connections until `shutdown`; each is served on its own
/// task (under the connection cap, `cap.rs`).
pub(crate) async fn serve(
    mut listener: CappedListener,
    tls: TlsAcceptor,
    app: Router,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept_capped() => accepted,
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
        let app = app.clone();
        tokio::spawn(async move {
            let stream =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, "management API: TLS handshake failed: {e}");
                        return;
                    }
                    Err(_) => return,
                };
            let service =
                app.map_request(move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request
                        .extensions_mut()
                        .insert(ConnectInfo::<SocketAddr>(peer));
                    request
                });
            let service = TowerToHyperService::new(service);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, "management API connection: {e}");
            }
        });
    }
}
