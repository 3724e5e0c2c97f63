//! The management HTTP listener: binds `[http] bind`, serves the router
//! until the broker shuts down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use axum::serve::ListenerExt as _;
use roost_broker::BrokerHandle;
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::auth::{Auth, AuthSettings};
use crate::cap::CappedListener;
use crate::state::{AppState, Shared};

/// Largest request body (publish payloads included).
const MAX_BODY: usize = 4 * 1024 * 1024;
/// A request that takes longer gets 408.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the listener did not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The address could not be bound.
    #[error("management API: cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS settings do not load.
    #[error("management API: [http] tls: {0}")]
    Tls(String),
}

impl AdminError {
    /// The address was taken by another process.
    pub fn is_addr_in_use(&self) -> bool {
        matches!(self, Self::Bind { source, .. } if source.kind() == std::io::ErrorKind::AddrInUse)
    }
}

/// A bound management listener.
#[derive(Debug)]
pub struct AdminServer {
    listener: TcpListener,
    addr: SocketAddr,
    state: Shared,
    tls: Option<crate::tls::TlsAcceptor>,
}

impl AdminServer {
    /// Binds `[http] bind` of the broker's configuration (or `addr`).
    pub async fn bind(broker: BrokerHandle, addr: Option<SocketAddr>) -> Result<Self, AdminError> {
        let http = broker.config().http.clone();
        let addr = addr.unwrap_or_else(|| http.effective_bind());
        let tls = match &http.tls {
            Some(tls) => Some(crate::tls::TlsAcceptor::load(tls).map_err(AdminError::Tls)?),
            None => None,
        };
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| AdminError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| AdminError::Bind { addr, source })?;
        let admin_file = http.effective_admin_file(&broker.config().store.data_dir);
        let auth = Auth::new(AuthSettings {
            admin_file,
            token_ttl: Duration::from_secs(http.token_ttl_s),
            login_max_failures: http.login_max_failures,
            login_window: Duration::from_secs(http.login_window_s),
            config_user: http
                .admin_user
                .clone()
                .zip(http.admin_password_hash.clone()),
        });
        let state = Arc::new(AppState {
            node: broker.node_name(),
            registry: crate::metrics::registry(broker.clone()),
            broker,
            auth,
            metrics_auth: http.metrics_auth,
            peers: crate::peers::Peers::new(),
        });
        if state.broker.is_clustered() {
            // The other nodes find this API through Redis (`peers.rs`).
            let url = http.effective_advertise_url(addr);
            tokio::spawn(crate::peers::join(
                state.broker.clone(),
                Arc::clone(&state),
                url,
            ));
        }
        Ok(Self {
            listener,
            addr,
            state,
            tls,
        })
    }

    /// The bound address (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Logs where it listens (`management API listening on http://...`) and
    /// how to get credentials when there are none yet.
    pub fn announce(&self) {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        tracing::info!("management API listening on {scheme}://{}", self.addr);
        if !self.state.auth.has_credentials() {
            tracing::warn!(
                "management API: no API key or dashboard user yet; create one with \
                 `roost ctl api-key create` or `roost ctl admin create <user>`"
            );
        }
    }

    /// Serves until the broker shuts down.
    pub async fn run(self) {
        let app = router(Arc::clone(&self.state));
        let shutdown = {
            let broker = self.state.broker.clone();
            async move { broker.shutdown_begun().await }
        };
        let max = self.state.broker.config().http.max_connections.max(1);
        let listener = CappedListener::new(self.listener, max);
        match self.tls {
            Some(tls) => crate::tls::serve(listener, tls, app, shutdown).await,
            None => {
                let service = app.into_make_service_with_connect_info::<SocketAddr>();
                // `tap_io` only for its `ConnectInfo<SocketAddr>` (axum
                // provides it for a wrapped listener's address type).
                let listener = listener.tap_io(|_| ());
                if let Err(e) = axum::serve(listener, service)
                    .with_graceful_shutdown(shutdown)
                    .await
                {
                    tracing::error!("management API stopped: {e}");
                }
            }
        }
    }
}

/// The whole router: API, metrics, the dashboard's static files.
pub(crate) fn router(state: Shared) -> Router {
    let metrics = Router::new().route("/metrics", get(crate::metrics::serve));
    let metrics = if state.metrics_auth {
        metrics.route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            crate::api::require_auth,
        ))
    } else {
        metrics
    };
    Router::new()
        .merge(crate::api::router(Arc::clone(&state)))
        .merge(metrics)
        .merge(crate::dashboard::router())
        .fallback(|| async { crate::error::ApiError::not_found("NOT_FOUND", "no such route") })
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(state)
}

/// For embedders: when `[http] enabled`, binds the management listener,
/// announces it and serves it on a task until the broker shuts down.
/// Returns its address (`None` when disabled).
pub async fn start(broker: BrokerHandle) -> Result<Option<SocketAddr>, AdminError> {
    if !broker.config().http.enabled {
        return Ok(None);
    }
    let server = AdminServer::bind(broker, None).await?;
    let addr = server.local_addr();
    server.announce();
    tokio::spawn(server.run());
    Ok(Some(addr))
}
