//! `POST /api/v1/publish` and `POST /api/v1/reload`.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use base64::Engine as _;
use bytes::Bytes;
use roost_codec::QoS;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::Shared;

/// A message to publish.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PublishRequest {
    /// Topic name (no wildcards).
    pub topic: String,
    /// Payload, as text or base64 (see `encoding`).
    #[serde(default)]
    pub payload: String,
    /// `plain` (default) or `base64`.
    #[serde(default)]
    pub encoding: Option<String>,
    /// QoS 0 (default), 1 or 2.
    #[serde(default)]
    pub qos: u8,
    /// Retain it.
    #[serde(default)]
    pub retain: bool,
}

/// What publishing did.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublishResponse {
    /// Sessions it reached.
    pub matched: usize,
}

/// Publishes a message from the broker itself (not checked against client
/// ACLs: the API key is the authority).
#[utoipa::path(post, path = "/api/v1/publish", tag = "publish", request_body = PublishRequest,
    responses((status = 200, body = PublishResponse), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn publish(
    State(state): State<Shared>,
    body: Result<Json<PublishRequest>, JsonRejection>,
) -> Result<Json<PublishResponse>, ApiError> {
    let Json(request) = body?;
    roost_codec::topic::validate_topic_name(&request.topic)
        .map_err(|e| ApiError::bad_request("BAD_TOPIC", e.to_string()))?;
    let qos = match request.qos {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        2 => QoS::ExactlyOnce,
        _ => return Err(ApiError::bad_request("BAD_QOS", "qos is 0, 1 or 2")),
    };
    let payload = match request.encoding.as_deref().unwrap_or("plain") {
        "plain" => Bytes::from(request.payload.into_bytes()),
        "base64" => Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(request.payload.as_bytes())
                .map_err(|e| ApiError::bad_request("BAD_PAYLOAD", format!("not base64: {e}")))?,
        ),
        _ => {
            return Err(ApiError::bad_request(
                "BAD_ENCODING",
                "encoding is plain or base64",
            ));
        }
    };
    let matched = state
        .broker
        .publish(&request.topic, payload, qos, request.retain);
    Ok(Json(PublishResponse { matched }))
}

/// What a reload did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReloadResponse {
    /// What reloaded: `auth` (password, SCRAM, ACL, ban files), `tls`.
    pub reloaded: Vec<String>,
    /// What failed (the previous contents stay in force), with the file and line.
    pub errors: Vec<String>,
}

/// Reloads the auth, ACL and ban files and every listener's certificates,
/// as SIGHUP does.
#[utoipa::path(post, path = "/api/v1/reload", tag = "status",
    responses((status = 200, body = ReloadResponse), (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn reload(State(state): State<Shared>) -> Result<Json<ReloadResponse>, ApiError> {
    let broker = state.broker.clone();
    let (auth, tls) =
        tokio::task::spawn_blocking(move || (broker.reload_auth(), broker.reload_tls()))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut reloaded = Vec::new();
    let mut errors = auth.clone();
    if auth.is_empty() {
        reloaded.push("auth".to_string());
    }
    match tls {
        Ok(n) => {
            if n > 0 {
                reloaded.push(format!("tls ({n} listeners)"));
            }
        }
        Err(e) => errors.push(e.to_string()),
    }
    tracing::info!(?reloaded, ?errors, "reload through the management API");
    Ok(Json(ReloadResponse { reloaded, errors }))
}
