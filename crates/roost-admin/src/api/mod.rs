//! The REST API under `/api/v1` (routes in /work/helpers/api-contract.md and
//! docs/management.md; the OpenAPI document is generated from the handlers'
//! `#[utoipa::path]` attributes, `openapi.rs`).

pub mod banned;
pub mod client_subs;
pub mod clients;
pub mod fanout;
pub mod login;
pub mod page;
pub mod publish;
pub mod retained;
pub mod stats;
pub mod status;
pub mod users;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{delete, get, post, put};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::Shared;

/// Every `/api/v1` route; all but login behind [`require_auth`].
pub(crate) fn router(state: Shared) -> Router<Shared> {
    let protected = Router::new()
        .route("/api/v1/status", get(status::status))
        .route("/api/v1/stats", get(stats::stats))
        .route("/api/v1/nodes", get(status::nodes))
        .route("/api/v1/listeners", get(status::listeners))
        .route("/api/v1/openapi.json", get(crate::openapi::serve))
        .route("/api/v1/clients", get(clients::list))
        .route(
            "/api/v1/clients/{client_id}",
            get(clients::get).delete(clients::kick),
        )
        .route(
            "/api/v1/clients/{client_id}/subscriptions",
            get(clients::subscriptions)
                .post(client_subs::subscribe)
                .delete(client_subs::unsubscribe),
        )
        .route("/api/v1/sessions", get(clients::sessions))
        .route("/api/v1/subscriptions", get(clients::all_subscriptions))
        .route("/api/v1/topics", get(clients::topics))
        .route("/api/v1/retained", get(retained::list))
        .route(
            "/api/v1/retained/{*topic}",
            get(retained::get).delete(retained::delete),
        )
        .route("/api/v1/publish", post(publish::publish))
        .route("/api/v1/reload", post(publish::reload))
        .route("/api/v1/banned", get(banned::list).post(banned::add))
        .route("/api/v1/banned/{kind}/{value}", delete(banned::remove))
        .route("/api/v1/users", get(users::list).post(users::add))
        .route(
            "/api/v1/users/{username}",
            put(users::passwd).delete(users::remove),
        )
        .route_layer(axum::middleware::from_fn_with_state(state, require_auth));
    Router::new()
        .route("/api/v1/login", post(login::login))
        .merge(protected)
}

/// A request another node sent on names the node it is for (`node=`, see
/// `fanout.rs`): 409 `WRONG_NODE` when that is not this one (two nodes
/// announcing one API URL, e.g. the default `127.0.0.1:18083` on two
/// hosts), so rows are never shown under another node's name.
fn wrong_node(state: &Shared, query: Option<&str>) -> Result<(), ApiError> {
    let named = query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.strip_prefix("node="))
        .next_back();
    match named {
        Some(node) if fanout::encode(&state.node) != node => Err(ApiError::conflict(
            "WRONG_NODE",
            format!(
                "this is node `{}`, not the node asked for: check the nodes' [http] advertise_url",
                state.node
            ),
        )),
        _ => Ok(()),
    }
}

/// 401 unless the request carries a valid API key or login token.
pub(crate) async fn require_auth(
    State(state): State<Shared>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let principal = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| state.auth.check_header(v))
        .ok_or_else(ApiError::unauthorized)?;
    if principal == Principal::Node {
        wrong_node(&state, request.uri().query())?;
    }
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}
