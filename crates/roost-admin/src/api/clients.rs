//! Clients and sessions: list, detail, kick, a client's subscriptions.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use roost_broker::{ClientDetail, ClientQuery, SubscriptionInfo};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::page::{List, Paging};
use crate::error::ApiError;
use crate::state::Shared;

/// A client (a session, connected or parked).
#[derive(Debug, Serialize, ToSchema)]
pub struct Client {
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
#[derive(Debug, Serialize, ToSchema)]
pub struct Subscription {
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
    /// Page, from 1.
    pub page: Option<u32>,
    /// Items per page, 1 to 1000.
    pub limit: Option<u32>,
}

fn not_found(client_id: &str) -> ApiError {
    ApiError::not_found(
        "CLIENT_NOT_FOUND",
        format!("no session with client id `{client_id}`"),
    )
}

/// Clients (connected and parked), sorted by client id.
#[utoipa::path(get, path = "/api/v1/clients", tag = "clients", params(ClientFilter),
    responses((status = 200, body = List<Client>), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn list(
    State(state): State<Shared>,
    query: Result<Query<ClientFilter>, QueryRejection>,
) -> Result<Json<List<Client>>, ApiError> {
    let Query(q) = query?;
    list_with(&state, q, None)
}

fn list_with(
    state: &Shared,
    q: ClientFilter,
    connected: Option<bool>,
) -> Result<Json<List<Client>>, ApiError> {
    let (page, limit, offset) = Paging {
        page: q.page,
        limit: q.limit,
    }
    .resolve()?;
    let mut query = ClientQuery::default();
    query.client_id = q.client_id;
    query.username = q.username;
    query.like = q.like;
    query.connected = connected;
    let found = state.broker.clients_page(&query, offset, limit as usize);
    let items = found.items.into_iter().map(Client::from).collect();
    Ok(Json(List::of(items, page, limit, offset, found.total)))
}

/// Sessions, online and offline (the same rows as the client list).
#[utoipa::path(get, path = "/api/v1/sessions", tag = "clients", params(Paging),
    responses((status = 200, body = List<Client>), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn sessions(
    State(state): State<Shared>,
    query: Result<Query<Paging>, QueryRejection>,
) -> Result<Json<List<Client>>, ApiError> {
    let Query(p) = query?;
    list_with(
        &state,
        ClientFilter {
            client_id: None,
            username: None,
            like: None,
            page: p.page,
            limit: p.limit,
        },
        None,
    )
}

/// One client, with what its connection's task knows (keep-alive, expiry,
/// inflight window, queue).
#[utoipa::path(get, path = "/api/v1/clients/{client_id}", tag = "clients",
    params(("client_id" = String, Path, description = "client identifier (URL-encoded)")),
    responses((status = 200, body = Client), (status = 404, description = "CLIENT_NOT_FOUND", body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn get(
    State(state): State<Shared>,
    Path(client_id): Path<String>,
) -> Result<Json<Client>, ApiError> {
    state
        .broker
        .client_live(&client_id)
        .await
        .map(|d| Json(Client::from(d)))
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
              (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn kick(
    State(state): State<Shared>,
    Path(client_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.broker.disconnect_client(&client_id) {
        tracing::info!(client_id, "disconnected through the management API");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(
            "CLIENT_NOT_FOUND",
            format!("no connected client with client id `{client_id}`"),
        ))
    }
}

/// A client's subscriptions.
#[utoipa::path(get, path = "/api/v1/clients/{client_id}/subscriptions", tag = "clients",
    params(("client_id" = String, Path, description = "client identifier (URL-encoded)")),
    responses((status = 200, body = [Subscription]), (status = 404, description = "CLIENT_NOT_FOUND", body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn subscriptions(
    State(state): State<Shared>,
    Path(client_id): Path<String>,
) -> Result<Json<Vec<Subscription>>, ApiError> {
    state
        .broker
        .client_subscriptions(&client_id)
        .map(|subs| Json(subs.into_iter().map(Subscription::from).collect()))
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
    query: Result<Query<SubscriptionFilter>, QueryRejection>,
) -> Result<Json<List<Subscription>>, ApiError> {
    let Query(q) = query?;
    let (page, limit, offset) = Paging {
        page: q.page,
        limit: q.limit,
    }
    .resolve()?;
    let found = state.broker.subscriptions_page(
        q.client_id.as_deref(),
        q.filter.as_deref(),
        offset,
        limit as usize,
    );
    let items = found.items.into_iter().map(Subscription::from).collect();
    Ok(Json(List::of(items, page, limit, offset, found.total)))
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
