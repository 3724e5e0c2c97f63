//! Clients and sessions: list, detail, kick, a client's subscriptions. In
//! a cluster the lists cover every node and a client held by another node
//! is answered by that node (`fanout.rs`).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use reqwest::Method;
use roost_broker::{ClientDetail, ClientQuery, SubscriptionInfo};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::fanout::{self, Scope};
use super::page::{List, Paging};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::Shared;

/// A client (a session, connected or parked).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Client {
    /// Cluster mode: the node that holds the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Client identifier.
    pub client_id: String,
    /// User name as authorized.
    pub username: Option<String>,
    /// A connection is attached (else the session is parked offline).
    pub connected: bool,
    /// Peer address (connected only).
    pub peer: Option<String>,
    /// `5.0`, `3.1.1` or `3.1` (connected only).
    pub protocol: Option<String>,
    /// Listener kind (connected only).
    pub listener: Option<String>,
    /// Subscriptions.
    pub subscriptions: usize,
    /// Messages waiting (offline queue, or outbox of a live connection).
    pub queued: usize,
    /// Unacknowledged QoS 1/2 messages (parked sessions; connected ones in
    /// the detail, asked of the connection's task).
    pub inflight: Option<usize>,
    /// Seconds until a parked session expires.
    pub session_expires_in_s: Option<u64>,
    /// Messages dropped for this session.
    pub dropped: u64,
    /// When the connection attached, seconds since the Unix epoch (connected only).
    pub connected_at: Option<u64>,
    /// The connection's CONNECT asked for Clean Start (connected only).
    pub clean_start: Option<bool>,
    /// Keep-alive in force in seconds, 0 = none (connected; in the detail only).
    pub keep_alive_s: Option<u16>,
    /// Session Expiry Interval in force in seconds (4294967295 = never; a
    /// connected session's in the detail only).
    pub session_expiry_interval_s: Option<u32>,
}

impl From<ClientDetail> for Client {
    fn from(d: ClientDetail) -> Self {
        Self {
            node: None,
            client_id: d.client_id,
            username: d.username,
            connected: d.connected,
            peer: d.peer,
            protocol: d.protocol.map(str::to_string),
            listener: d.listener,
            subscriptions: d.subscriptions,
            queued: d.queued,
            inflight: d.inflight,
            session_expires_in_s: d.expires_in_s,
            dropped: d.dropped,
            connected_at: d.connected_at,
            clean_start: d.clean_start,
            keep_alive_s: d.keep_alive_s,
            session_expiry_interval_s: d.session_expiry_interval_s,
        }
    }
}

/// A subscription.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Subscription {
    /// Cluster mode: the node of the subscriber's session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Subscriber.
    pub client_id: String,
    /// Filter (`$share/<group>/...` for a shared subscription).
    pub filter: String,
    /// Granted QoS.
    pub qos: u8,
    /// No Local.
    pub no_local: bool,
    /// Retain As Published.
    pub retain_as_published: bool,
    /// Retain Handling 0, 1 or 2.
    pub retain_handling: u8,
    /// Subscription Identifier.
    pub subscription_id: Option<u32>,
}

impl From<SubscriptionInfo> for Subscription {
    fn from(s: SubscriptionInfo) -> Self {
        Self {
            node: None,
            client_id: s.client_id,
            filter: s.filter,
            qos: s.qos,
            no_local: s.no_local,
            retain_as_published: s.retain_as_published,
            retain_handling: s.retain_handling,
            subscription_id: s.subscription_id,
        }
    }
}

/// Filters of the client list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClientFilter {
    /// Exactly this client id.
    pub client_id: Option<String>,
    /// Exactly this user name.
    pub username: Option<String>,
    /// Client ids containing this text.
    pub like: Option<String>,
    /// Cluster mode: `all` (default) or one node's id.
    pub node: Option<String>,
    /// Page, from 1.
    pub page: Option<u32>,
    /// Items per page, 1 to 1000.
    pub limit: Option<u32>,
}

/// The `node` of this node's rows: its id in cluster mode, else none
/// (a single broker's answers are as they were).
fn node_tag(state: &Shared) -> Option<String> {
    state.broker.is_clustered().then(|| state.node.clone())
}

fn not_found(client_id: &str) -> ApiError {
    ApiError::not_found(
        "CLIENT_NOT_FOUND",
        format!("no session with client id `{client_id}`"),
    )
}

/// Clients (connected and parked), sorted by client id; in a cluster,
/// every node's (`?node=` for one), with `meta.failed_nodes`.
#[utoipa::path(get, path = "/api/v1/clients", tag = "clients", params(ClientFilter),
    responses((status = 200, body = List<Client>),
              (status = 400, description = "BAD_PAGE, BAD_LIMIT, PAGE_TOO_DEEP", body = crate::error::ErrorBody),
              (status = 404, description = "NODE_NOT_FOUND", body = crate::error::ErrorBody),
              (status = 502, description = "NODE_UNAVAILABLE (`?node=` of a node that did not answer)", body = crate::error::ErrorBody),
              (status = 503, description = "CLUSTER_UNAVAILABLE", body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn list(
    State(state): State<Shared>,
    Extension(principal): Extension<Principal>,
    query: Result<Query<ClientFilter>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query?;
    list_with(&state, &principal, "/api/v1/clients", q).await
}

async fn list_with(
    state: &Shared,
    principal: &Principal,
    path: &str,
    q: ClientFilter,
) -> Result<Response, ApiError> {
    let (page, limit, offset) = Paging {
        page: q.page,
        limit: q.limit,
    }
    .resolve()?;
    let mut query = ClientQuery::default();
    query.client_id = q.client_id;
    query.username = q.username;
    query.like = q.like;
    let local = |offset: usize, limit: usize| {
        let found = state.broker.clients_page(&query, offset, limit);
        let rows: Vec<Client> = found
            .items
            .into_iter()
            .map(|d| Client {
                node: node_tag(state),
                ..Client::from(d)
            })
            .collect();
        (rows, found.total)
    };
    let passed_on = fanout::query(&[
        ("client_id", query.client_id.clone()),
        ("username", query.username.clone()),
        ("like", query.like.clone()),
    ]);
    match Scope::of(state, q.node.as_deref(), principal)? {
        Scope::Local => {
            let (items, total) = local(offset, limit as usize);
            Ok(Json(List::of(items, page, limit, offset, total)).into_response())
        }
        Scope::Node(node) => {
            let sep = if passed_on.is_empty() { '?' } else { '&' };
            let path = format!("{path}{passed_on}{sep}page={page}&limit={limit}");
            fanout::forward(state, &node, Method::GET, &path, None).await
        }
        Scope::All => {
            let depth = fanout::depth(offset, limit)?;
            let (parts, failed) =
                fanout::gather(state, path, &passed_on, depth, |depth| local(0, depth)).await?;
            let (items, total) = fanout::merge_sorted(
                parts,
                offset,
                limit as usize,
                |row: &mut Client, node| row.node = Some(node.to_string()),
                |row| row.client_id.clone(),
            );
            let list = List::of(items, page, limit, offset, total);
            Ok(fanout::with_failed(list, failed).into_response())
        }
    }
}

/// `?node&page&limit` of the session list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SessionFilter {
    /// Cluster mode: `all` (default) or one node's id.
    pub node: Option<String>,
    /// Page, from 1.
    pub page: Option<u32>,
    /// Items per page, 1 to 1000.
    pub limit: Option<u32>,
}

/// Sessions, online and offline (the same rows as the client list).
#[utoipa::path(get, path = "/api/v1/sessions", tag = "clients", params(SessionFilter),
    responses((status = 200, body = List<Client>),
              (status = 400, description = "BAD_PAGE, BAD_LIMIT, PAGE_TOO_DEEP", body = crate::error::ErrorBody),
              (status = 404, description = "NODE_NOT_FOUND", body = crate::error::ErrorBody),
              (status = 502, description = "NODE_UNAVAILABLE", body = crate::error::ErrorBody),
              (status = 503, description = "CLUSTER_UNAVAILABLE", body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn sessions(
    State(state): State<Shared>,
    Extension(principal): Extension<Principal>,
    query: Result<Query<SessionFilter>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = query?;
    list_with(
        &state,
        &principal,
        "/api/v1/sessions",
        ClientFilter {
            client_id: None,
            username: None,
            like: None,
            node: p.node,
            page: p.page,
            limit: p.limit,
        },
    )
    .await
}

/// One client, with what its connection's task knows (keep-alive, expiry,
/// inflight window, queue).
#[utoipa::path(get, path = "/api/v1/clients/{client_id}", tag = "clients",
    params(("client_id" = String, Path, description = "client identifier (URL-encoded)")),
    responses((status = 200, body = Client), (status = 404, description = "CLIENT_NOT_FOUND", body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody),
              (status = 502, description = "NODE_UNAVAILABLE: the node holding the client did not answer", body = crate::error::ErrorBody),
              (status = 503, description = "CLUSTER_UNAVAILABLE: Redis did not answer the owner lookup", body = crate::error::ErrorBody)))]
pub(crate) async fn get(
    State(state): State<Shared>,
    Extension(principal): Extension<Principal>,
    Path(client_id): Path<String>,
) -> Result<Response, ApiError> {
    if let Some(d) = state.broker.client_live(&client_id).await {
        let client = Client {
            node: node_tag(&state),
            ..Client::from(d)
        };
        return Ok(Json(client).into_response());
    }
    let path = format!("/api/v1/clients/{}", fanout::encode(&client_id));
    fanout::to_owner(&state, &principal, &client_id, Method::GET, &path, None)
        .await?
        .ok_or_else(|| not_found(&client_id))
}

/// Disconnects a client: DISCONNECT 0x98 Administrative action (5.0), then
/// the connection is closed (its will is published, as for any
/// server-initiated close). The session stays (parked) when it has an
/// expiry interval.
#[utoipa::path(delete, path = "/api/v1/clients/{client_id}", tag = "clients",
    params(("client_id" = String, Path, description = "client identifier (URL-encoded)")),
    responses((status = 204, description = "disconnected"),
              (status = 404, description = "CLIENT_NOT_FOUND (or not connected)", body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody),
              (status = 502, description = "NODE_UNAVAILABLE: the node holding the client did not answer", body = crate::error::ErrorBody),
              (status = 503, description = "CLUSTER_UNAVAILABLE: Redis did not answer the owner lookup", body = crate::error::ErrorBody)))]
pub(crate) async fn kick(
    State(state): State<Shared>,
    Extension(principal): Extension<Principal>,
    Path(client_id): Path<String>,
) -> Result<Response, ApiError> {
    if state.broker.disconnect_client(&client_id) {
        tracing::info!(client_id, "disconnected through the management API");
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let path = format!("/api/v1/clients/{}", fanout::encode(&client_id));
    fanout::to_owner(&state, &principal, &client_id, Method::DELETE, &path, None)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "CLIENT_NOT_FOUND",
                format!("no connected client with client id `{client_id}`"),
            )
        })
}

/// A client's subscriptions.
#[utoipa::path(get, path = "/api/v1/clients/{client_id}/subscriptions", tag = "clients",
    params(("client_id" = String, Path, description = "client identifier (URL-encoded)")),
    responses((status = 200, body = [Subscription]), (status = 404, description = "CLIENT_NOT_FOUND", body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody),
              (status = 502, description = "NODE_UNAVAILABLE: the node holding the client did not answer", body = crate::error::ErrorBody),
              (status = 503, description = "CLUSTER_UNAVAILABLE: Redis did not answer the owner lookup", body = crate::error::ErrorBody)))]
pub(crate) async fn subscriptions(
    State(state): State<Shared>,
    Extension(principal): Extension<Principal>,
    Path(client_id): Path<String>,
) -> Result<Response, ApiError> {
    if let Some(subs) = state.broker.client_subscriptions(&client_id) {
        let subs: Vec<Subscription> = subs
            .into_iter()
            .map(|s| Subscription {
                node: node_tag(&state),
                ..Subscription::from(s)
            })
            .collect();
        return Ok(Json(subs).into_response());
    }
    let path = format!(
        "/api/v1/clients/{}/subscriptions",
        fanout::encode(&client_id)
    );
    fanout::to_owner(&state, &principal, &client_id, Method::GET, &path, None)
        .await?
        .ok_or_else(|| not_found(&client_id))
}

/// Filters of the subscription list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SubscriptionFilter {
    /// Only this client's.
    pub client_id: Option<String>,
    /// Only this exact filter (`$share/g/f` for one group, `f` for all).
    pub filter: Option<String>,
    /// Cluster mode: `all` (default) or one node's id.
    pub node: Option<String>,
    /// Page, from 1.
    pub page: Option<u32>,
    /// Items per page, 1 to 1000.
    pub limit: Option<u32>,
}

/// Every subscription, in filter-trie order.
#[utoipa::path(get, path = "/api/v1/subscriptions", tag = "subscriptions", params(SubscriptionFilter),
    responses((status = 200, body = List<Subscription>), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn all_subscriptions(
    State(state): State<Shared>,
    Extension(principal): Extension<Principal>,
    query: Result<Query<SubscriptionFilter>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query?;
    let (page, limit, offset) = Paging {
        page: q.page,
        limit: q.limit,
    }
    .resolve()?;
    let local = |offset: usize, limit: usize| {
        let found = state.broker.subscriptions_page(
            q.client_id.as_deref(),
            q.filter.as_deref(),
            offset,
            limit,
        );
        let rows: Vec<Subscription> = found
            .items
            .into_iter()
            .map(|s| Subscription {
                node: node_tag(&state),
                ..Subscription::from(s)
            })
            .collect();
        (rows, found.total)
    };
    let passed_on = fanout::query(&[
        ("client_id", q.client_id.clone()),
        ("filter", q.filter.clone()),
    ]);
    let path = "/api/v1/subscriptions";
    match Scope::of(&state, q.node.as_deref(), &principal)? {
        Scope::Local => {
            let (items, total) = local(offset, limit as usize);
            Ok(Json(List::of(items, page, limit, offset, total)).into_response())
        }
        Scope::Node(node) => {
            let sep = if passed_on.is_empty() { '?' } else { '&' };
            let path = format!("{path}{passed_on}{sep}page={page}&limit={limit}");
            fanout::forward(&state, &node, Method::GET, &path, None).await
        }
        Scope::All => {
            let depth = fanout::depth(offset, limit)?;
            let (parts, failed) =
                fanout::gather(&state, path, &passed_on, depth, |depth| local(0, depth)).await?;
            let (items, total) = fanout::concat(
                parts,
                offset,
                limit as usize,
                |row: &mut Subscription, node| {
                    row.node = Some(node.to_string());
                },
            );
            let list = List::of(items, page, limit, offset, total);
            Ok(fanout::with_failed(list, failed).into_response())
        }
    }
}

/// A routed filter.
#[derive(Debug, Serialize, ToSchema)]
pub struct Route {
    /// The filter (`$share/<group>/...` for a shared group).
    pub filter: String,
    /// Its subscribers.
    pub subscribers: usize,
}

/// Routes: every subscribed filter with its number of subscribers.
#[utoipa::path(get, path = "/api/v1/topics", tag = "subscriptions", params(Paging),
    responses((status = 200, body = List<Route>), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn topics(
    State(state): State<Shared>,
    query: Result<Query<Paging>, QueryRejection>,
) -> Result<Json<List<Route>>, ApiError> {
    let Query(p) = query?;
    let (page, limit, offset) = p.resolve()?;
    let found = state.broker.routes_page(offset, limit as usize);
    let items = found
        .items
        .into_iter()
        .map(|r| Route {
            filter: r.filter,
            subscribers: r.subscribers,
        })
        .collect();
    Ok(Json(List::of(items, page, limit, offset, found.total)))
}
