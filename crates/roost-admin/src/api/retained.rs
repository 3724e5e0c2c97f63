//! Retained messages: browse by filter with paging, get, delete.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use base64::Engine as _;
use roost_broker::{RetainedError, RetainedMessage};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::page::{List, Meta, Paging};
use crate::error::ApiError;
use crate::state::Shared;

/// A retained message.
#[derive(Debug, Serialize, ToSchema)]
pub struct Retained {
    /// Topic.
    pub topic: String,
    /// QoS it was published with.
    pub qos: u8,
    /// Payload size in bytes.
    pub payload_size: usize,
    /// The payload: text when it is UTF-8, else base64.
    pub payload: String,
    /// `plain` or `base64`.
    pub encoding: &'static str,
    /// When it was stored (RFC 3339).
    pub stored_at: String,
    /// Seconds until it expires (Message Expiry or `retain_ttl`).
    pub expires_in_s: Option<u64>,
    /// The client id that published it.
    pub publisher: Option<String>,
}

impl From<RetainedMessage> for Retained {
    fn from(m: RetainedMessage) -> Self {
        let (payload, encoding) = match std::str::from_utf8(&m.payload) {
            Ok(text) => (text.to_string(), "plain"),
            Err(_) => (
                base64::engine::general_purpose::STANDARD.encode(&m.payload),
                "base64",
            ),
        };
        Self {
            topic: m.topic.to_string(),
            qos: m.qos as u8,
            payload_size: m.payload.len(),
            payload,
            encoding,
            stored_at: super::status::rfc3339(m.stored_at),
            expires_in_s: m.expires_in.map(|d: Duration| d.as_secs()),
            publisher: m.publisher.map(|p| p.to_string()),
        }
    }
}

/// The query of the retained browser.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RetainedQuery {
    /// Topic filter (wildcards as in a subscription; default `#`, which
    /// leaves out `$` topics).
    pub filter: Option<String>,
    /// Page, from 1 (walks the earlier pages; prefer `after`).
    pub page: Option<u32>,
    /// Items per page, 1 to 1000.
    pub limit: Option<u32>,
    /// Continue after this topic: the previous page's `meta.next`.
    pub after: Option<String>,
}

fn retained_error(e: RetainedError) -> ApiError {
    match e {
        RetainedError::InvalidFilter(m) => ApiError::bad_request("BAD_FILTER", m),
        RetainedError::InvalidTopic(m) => ApiError::bad_request("BAD_TOPIC", m),
        other => ApiError::bad_request("BAD_REQUEST", other.to_string()),
    }
}

/// Retained messages matching a filter, in topic order. Pages are cut by
/// `limit`; `meta.next` is the cursor for `?after=` (cheap), `page=N` walks
/// the pages before it. A topic stored during the whole listing shows
/// exactly once, whatever changes meanwhile. `meta.count` is null.
#[utoipa::path(get, path = "/api/v1/retained", tag = "retained", params(RetainedQuery),
    responses((status = 200, body = List<Retained>), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn list(
    State(state): State<Shared>,
    query: Result<Query<RetainedQuery>, QueryRejection>,
) -> Result<Json<List<Retained>>, ApiError> {
    let Query(q) = query?;
    let (page, limit, offset) = Paging {
        page: q.page,
        limit: q.limit,
    }
    .resolve()?;
    let filter = q.filter.as_deref().unwrap_or("#");
    if page > 1 && q.after.is_some() {
        return Err(ApiError::bad_request(
            "BAD_REQUEST",
            "give page or after, not both",
        ));
    }
    let limit_n = limit as usize;
    // Skip `offset` messages (page numbers), keep `limit`, and look for one
    // more to tell whether another page follows. The broker's pages may be
    // shorter than asked (it scans a bounded number of topics per call).
    let mut cursor = q.after.clone();
    let mut skip = offset;
    let mut data: Vec<Retained> = Vec::with_capacity(limit_n);
    let mut hasnext = false;
    'pages: loop {
        let want = (skip + limit_n + 1 - data.len()).min(1_000);
        let found = state
            .broker
            .retained_list(filter, cursor.as_deref(), want)
            .map_err(retained_error)?;
        for m in found.messages {
            if skip > 0 {
                skip -= 1;
            } else if data.len() < limit_n {
                data.push(Retained::from(m));
            } else {
                hasnext = true;
                break 'pages;
            }
        }
        match found.next {
            Some(after) => cursor = Some(after),
            None => break,
        }
    }
    let next = if hasnext {
        data.last().map(|m| m.topic.clone())
    } else {
        None
    };
    Ok(Json(List {
        data,
        meta: Meta {
            page,
            limit,
            count: None,
            hasnext,
            next,
            failed_nodes: None,
        },
    }))
}

/// One retained message (the topic URL-encoded; it may contain `/`).
#[utoipa::path(get, path = "/api/v1/retained/{topic}", tag = "retained",
    params(("topic" = String, Path, description = "topic name, may contain /")),
    responses((status = 200, body = Retained), (status = 404, description = "RETAINED_NOT_FOUND", body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn get(
    State(state): State<Shared>,
    Path(topic): Path<String>,
) -> Result<Json<Retained>, ApiError> {
    state
        .broker
        .retained_get(&topic)
        .map(|m| Json(Retained::from(m)))
        .ok_or_else(|| {
            ApiError::not_found(
                "RETAINED_NOT_FOUND",
                format!("no retained message on `{topic}`"),
            )
        })
}

/// Deletes one retained message.
#[utoipa::path(delete, path = "/api/v1/retained/{topic}", tag = "retained",
    params(("topic" = String, Path, description = "topic name, may contain /")),
    responses((status = 204, description = "deleted"), (status = 404, description = "RETAINED_NOT_FOUND", body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn delete(
    State(state): State<Shared>,
    Path(topic): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.broker.retained_delete(&topic) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(
            "RETAINED_NOT_FOUND",
            format!("no retained message on `{topic}`"),
        ))
    }
}
