//! Subscribing and unsubscribing a client through the API
//! (`POST`/`DELETE /api/v1/clients/{client_id}/subscriptions`): the broker
//! does it as if the client had sent SUBSCRIBE or UNSUBSCRIBE, without an
//! acknowledgement to the client (`roost_broker::BrokerHandle::subscribe_client`).
//! In a cluster, a client held by another node is subscribed there
//! (`fanout.rs`).

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use reqwest::Method;
use roost_broker::SubscribeError;
use roost_codec::{QoS, RetainHandling, SubscriptionOptions};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::fanout;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::Shared;

/// A subscription to make for a client.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    /// Topic filter (`$share/<group>/...` for a shared subscription).
    pub filter: String,
    /// Maximum QoS (0, 1, 2; capped at the broker's Maximum QoS). Default 0.
    #[serde(default)]
    pub qos: u8,
    /// No Local. Default false.
    #[serde(default)]
    pub no_local: bool,
    /// Retain As Published. Default false.
    #[serde(default)]
    pub retain_as_published: bool,
    /// Retain Handling: 0 send retained messages now, 1 only if the
    /// subscription is new, 2 never. Default 0.
    #[serde(default)]
    pub retain_handling: u8,
}

/// What subscribing did.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscribeResult {
    /// The QoS granted.
    pub qos: u8,
    /// The client held this filter already (its options were replaced).
    pub existed: bool,
    /// Retained messages sent to the client for it.
    pub retained: usize,
}

/// The filter to remove.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FilterParam {
    /// The topic filter as subscribed (URL-encoded).
    pub filter: String,
}

fn options(body: &NewSubscription) -> Result<SubscriptionOptions, ApiError> {
    let qos = QoS::from_u8(body.qos)
        .ok_or_else(|| ApiError::bad_request("BAD_QOS", "qos must be 0, 1 or 2"))?;
    let retain_handling = match body.retain_handling {
        0 => RetainHandling::SendAtSubscribe,
        1 => RetainHandling::SendIfNew,
        2 => RetainHandling::DoNotSend,
        _ => {
            return Err(ApiError::bad_request(
                "BAD_RETAIN_HANDLING",
                "retain_handling must be 0, 1 or 2",
            ));
        }
    };
    Ok(SubscriptionOptions {
        qos,
        no_local: body.no_local,
        retain_as_published: body.retain_as_published,
        retain_handling,
    })
}

fn api_error(client_id: &str, e: SubscribeError) -> ApiError {
    match e {
        SubscribeError::NotFound => ApiError::not_found(
            "CLIENT_NOT_FOUND",
            format!("no session with client id `{client_id}`"),
        ),
        SubscribeError::Refused(reason) => ApiError::bad_request(
            "SUBSCRIPTION_REFUSED",
            format!("refused as a SUBSCRIBE would be: {}", reason.name()),
        ),
        SubscribeError::Busy => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "BUSY",
            "too many management requests wait for this connection; retry",
        ),
        e => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "NO_ANSWER", e.to_string()),
    }
}

/// Subscribes a client as if it had sent SUBSCRIBE (no SUBACK goes to it):
/// the filter is validated and counted against `max_subscriptions`, joins
/// the router, the session and the store, and retained messages follow per
/// Retain Handling. A parked (offline) session is changed in place.
#[utoipa::path(post, path = "/api/v1/clients/{client_id}/subscriptions", tag = "clients",
    params(("client_id" = String, Path, description = "client identifier (URL-encoded)")),
    request_body = NewSubscription,
    responses((status = 200, body = SubscribeResult),
              (status = 400, description = "BAD_REQUEST, BAD_QOS, BAD_RETAIN_HANDLING, SUBSCRIPTION_REFUSED", body = crate::error::ErrorBody),
              (status = 404, description = "CLIENT_NOT_FOUND", body = crate::error::ErrorBody),
              (status = 429, description = "BUSY", body = crate::error::ErrorBody),
              (status = 503, description = "NO_ANSWER: the connection closed meanwhile; CLUSTER_UNAVAILABLE: Redis did not answer the owner lookup", body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody),
              (status = 502, description = "NODE_UNAVAILABLE: the node holding the client did not answer", body = crate::error::ErrorBody)))]
pub(crate) async fn subscribe(
    State(state): State<Shared>,
    Extension(principal): Extension<Principal>,
    Path(client_id): Path<String>,
    body: Result<Json<NewSubscription>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let options = options(&body)?;
    let done = match state
        .broker
        .subscribe_client(&client_id, &body.filter, options)
        .await
    {
        Ok(done) => done,
        Err(SubscribeError::NotFound) => {
            let path = subscriptions_path(&client_id);
            let json = serde_json::to_vec(&body).map_err(|e| ApiError::internal(e.to_string()))?;
            let sent = fanout::to_owner(
                &state,
                &principal,
                &client_id,
                Method::POST,
                &path,
                Some(json.into()),
            )
            .await?;
            return sent.ok_or_else(|| api_error(&client_id, SubscribeError::NotFound));
        }
        Err(e) => return Err(api_error(&client_id, e)),
    };
    tracing::info!(
        client_id,
        filter = body.filter,
        "subscription added through the management API"
    );
    Ok(Json(SubscribeResult {
        qos: done.qos,
        existed: done.existed,
        retained: done.retained,
    })
    .into_response())
}

fn subscriptions_path(client_id: &str) -> String {
    format!(
        "/api/v1/clients/{}/subscriptions",
        fanout::encode(client_id)
    )
}

/// Unsubscribes a client from a filter as if it had sent UNSUBSCRIBE (no
/// UNSUBACK goes to it).
#[utoipa::path(delete, path = "/api/v1/clients/{client_id}/subscriptions", tag = "clients",
    params(("client_id" = String, Path, description = "client identifier (URL-encoded)"), FilterParam),
    responses((status = 204, description = "removed"),
              (status = 400, body = crate::error::ErrorBody),
              (status = 404, description = "CLIENT_NOT_FOUND, SUBSCRIPTION_NOT_FOUND", body = crate::error::ErrorBody),
              (status = 429, description = "BUSY", body = crate::error::ErrorBody),
              (status = 503, description = "NO_ANSWER; CLUSTER_UNAVAILABLE", body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody),
              (status = 502, description = "NODE_UNAVAILABLE: the node holding the client did not answer", body = crate::error::ErrorBody)))]
pub(crate) async fn unsubscribe(
    State(state): State<Shared>,
    Extension(principal): Extension<Principal>,
    Path(client_id): Path<String>,
    query: Result<Query<FilterParam>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(FilterParam { filter }) = query?;
    let held = match state.broker.unsubscribe_client(&client_id, &filter).await {
        Ok(held) => held,
        Err(SubscribeError::NotFound) => {
            let path = format!(
                "{}?filter={}",
                subscriptions_path(&client_id),
                fanout::encode(&filter)
            );
            let sent =
                fanout::to_owner(&state, &principal, &client_id, Method::DELETE, &path, None)
                    .await?;
            return sent.ok_or_else(|| api_error(&client_id, SubscribeError::NotFound));
        }
        Err(e) => return Err(api_error(&client_id, e)),
    };
    if !held {
        return Err(ApiError::not_found(
            "SUBSCRIPTION_NOT_FOUND",
            format!("client `{client_id}` holds no subscription `{filter}`"),
        ));
    }
    tracing::info!(
        client_id,
        filter,
        "subscription removed through the management API"
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}
