//! The ban list (`[auth.banned]`): list, add (closing the connections the
//! ban covers), remove. Bans added here live in memory: a restart keeps only
//! those of the config and its ban file.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use roost_auth::{Ban as AuthBan, BanTarget};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::Shared;

/// A ban.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Ban {
    /// `clientid`, `username` or `peerhost`.
    pub kind: String,
    /// The client id, user name, or address / CIDR network.
    pub value: String,
    /// End of the ban, Unix seconds (absent: never).
    #[serde(default)]
    pub until: Option<u64>,
    /// Why (logged; not stored).
    #[serde(default, skip_serializing)]
    pub reason: Option<String>,
}

/// What adding a ban did.
#[derive(Debug, Serialize, ToSchema)]
pub struct BanAdded {
    /// Live connections it closed.
    pub disconnected: usize,
}

fn no_list() -> ApiError {
    ApiError::conflict(
        "BANS_NOT_CONFIGURED",
        "no ban list is configured: add [auth.banned] to the config",
    )
}

fn target(kind: &str, value: &str) -> Result<BanTarget, ApiError> {
    let prefix = match kind {
        "clientid" => "client",
        "username" => "user",
        "peerhost" => "ip",
        _ => {
            return Err(ApiError::bad_request(
                "BAD_KIND",
                "kind is clientid, username or peerhost",
            ));
        }
    };
    let value = if kind == "peerhost" && !value.contains('/') {
        // A bare address bans that one host.
        if value.contains(':') {
            format!("{value}/128")
        } else {
            format!("{value}/32")
        }
    } else {
        value.to_string()
    };
    BanTarget::parse(&format!("{prefix}:{value}"))
        .map_err(|e| ApiError::bad_request("BAD_VALUE", e))
}

fn to_api(ban: &AuthBan) -> Ban {
    let (kind, value) = match &ban.target {
        BanTarget::ClientId(id) => ("clientid", id.clone()),
        BanTarget::Username(name) => ("username", name.clone()),
        BanTarget::Ip(net) => ("peerhost", net.to_string()),
    };
    Ban {
        kind: kind.to_string(),
        value,
        until: ban
            .expires_at
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs()),
        reason: None,
    }
}

/// The active bans.
#[utoipa::path(get, path = "/api/v1/banned", tag = "banned",
    responses((status = 200, body = [Ban]), (status = 409, description = "BANS_NOT_CONFIGURED", body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn list(State(state): State<Shared>) -> Result<Json<Vec<Ban>>, ApiError> {
    let bans = state.broker.bans().ok_or_else(no_list)?;
    Ok(Json(
        bans.list(SystemTime::now()).iter().map(to_api).collect(),
    ))
}

/// Adds a ban and closes the live connections it covers (DISCONNECT 0x98
/// for 5.0); their next CONNECT is refused with 0x8A Banned.
#[utoipa::path(post, path = "/api/v1/banned", tag = "banned", request_body = Ban,
    responses((status = 201, body = BanAdded), (status = 400, body = crate::error::ErrorBody),
              (status = 409, description = "BANS_NOT_CONFIGURED", body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn add(
    State(state): State<Shared>,
    body: Result<Json<Ban>, JsonRejection>,
) -> Result<(StatusCode, Json<BanAdded>), ApiError> {
    let Json(ban) = body?;
    let target = target(&ban.kind, &ban.value)?;
    let expires_at = ban.until.map(|s| UNIX_EPOCH + Duration::from_secs(s));
    if expires_at.is_some_and(|t| t <= SystemTime::now()) {
        return Err(ApiError::bad_request("BAD_UNTIL", "until is in the past"));
    }
    tracing::info!(target = %target, reason = ban.reason.as_deref().unwrap_or(""), "ban added through the management API");
    let disconnected = state
        .broker
        .ban(AuthBan::new(target, expires_at))
        .ok_or_else(no_list)?;
    Ok((StatusCode::CREATED, Json(BanAdded { disconnected })))
}

/// Lifts a ban.
#[utoipa::path(delete, path = "/api/v1/banned/{kind}/{value}", tag = "banned",
    params(("kind" = String, Path, description = "clientid, username or peerhost"),
           ("value" = String, Path, description = "URL-encoded; a network as a.b.c.d%2F24")),
    responses((status = 204, description = "lifted"), (status = 404, description = "BAN_NOT_FOUND", body = crate::error::ErrorBody),
              (status = 409, description = "BANS_NOT_CONFIGURED", body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn remove(
    State(state): State<Shared>,
    Path((kind, value)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let target = target(&kind, &value)?;
    // `unban`, not `BanList::remove`: in cluster mode it lifts the ban on
    // every node.
    if state.broker.unban(&target).ok_or_else(no_list)? {
        tracing::info!(target = %target, "ban lifted through the management API");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(
            "BAN_NOT_FOUND",
            format!("no ban on {kind} {value}"),
        ))
    }
}
