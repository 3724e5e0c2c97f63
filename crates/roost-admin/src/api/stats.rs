//! `GET /api/v1/stats`: the broker's counters, of the node asked, of one
//! other node (`?node=<id>`), or of the whole cluster (`?node=all`): every
//! node asked at once (as the cluster-wide lists, `fanout.rs`), its
//! counters under `nodes`, and at the top level the cluster's, so a
//! reader of one node's stats reads the cluster's the same way.
//!
//! **The cluster's counters** add up the nodes', except what every node
//! holds whole: the retained set (each node keeps the cluster's, so its
//! `retained_*` are the cluster's: the largest is taken), and the store's
//! state (`store_unavailable` if any node's store is, the longest
//! `store_outage_ms`). `connections_maximum` is the sum of each node's
//! maximum: an upper bound of the cluster's (the nodes' peaks need not
//! coincide). A node that does not answer is named in `failed_nodes` and
//! missing from the sums.

use axum::Extension;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::IntoParams;

use super::fanout::{self, FailedNode, Scope};
use super::status::now_ms;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::Shared;

/// Which node's counters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// Cluster mode: this node's (default), one node's id, or `all` (the
    /// cluster's counters, each node's under `nodes`).
    pub node: Option<String>,
}

/// Counters every node holds whole: the cluster's value is the largest.
const WHOLE: [&str; 5] = [
    "retained_messages",
    "retained_bytes",
    "retained_expired",
    "retained_refused",
    "store_outage_ms",
];

/// The broker's counters (`roost_broker::Stats`, snake_case) and
/// `timestamp_ms`; with `?node=all` the cluster's, each node's under
/// `nodes`, and `failed_nodes`.
#[utoipa::path(get, path = "/api/v1/stats", tag = "status", params(StatsQuery),
    responses((status = 200, description = "every field of roost_broker::Stats plus timestamp_ms; with node=all also nodes and failed_nodes", body = Object),
              (status = 404, description = "NODE_NOT_FOUND", body = crate::error::ErrorBody),
              (status = 502, description = "NODE_UNAVAILABLE", body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn stats(
    State(state): State<Shared>,
    Extension(principal): Extension<Principal>,
    query: Result<Query<StatsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query?;
    // This node's by default, as before clusters (dashboards and scrapers
    // read one node's); `node=all` asks for the cluster's.
    let scope = match q.node.as_deref() {
        None => Scope::Local,
        node => Scope::of(&state, node, &principal)?,
    };
    match scope {
        Scope::Local => Ok(Json(local(&state)?).into_response()),
        Scope::Node(node) => {
            fanout::forward(&state, &node, Method::GET, "/api/v1/stats", None).await
        }
        Scope::All => Ok(Json(cluster(&state).await?).into_response()),
    }
}

/// This node's counters and `timestamp_ms`.
fn local(state: &Shared) -> Result<Value, ApiError> {
    let mut value = serde_json::to_value(state.broker.stats())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    if let Some(map) = value.as_object_mut() {
        map.insert("timestamp_ms".into(), now_ms().into());
    }
    Ok(value)
}

async fn cluster(state: &Shared) -> Result<Value, ApiError> {
    let this = local(state)?;
    let (answers, mut failed) = fanout::ask_all(state, "/api/v1/stats").await?;
    let mut nodes = vec![(state.node.clone(), this)];
    for (node, answer) in answers {
        match serde_json::from_slice::<Value>(&answer) {
            Ok(value) if value.is_object() => nodes.push((node, value)),
            Ok(_) => failed.push(FailedNode {
                node,
                error: "unreadable answer: not an object".into(),
            }),
            Err(e) => failed.push(FailedNode {
                node,
                error: format!("unreadable answer: {e}"),
            }),
        }
    }
    nodes.sort_by(|a, b| a.0.cmp(&b.0));
    failed.sort_by(|a, b| a.node.cmp(&b.node));
    let mut total = sum(nodes.iter().map(|(_, v)| v));
    total.insert("timestamp_ms".into(), now_ms().into());
    let rows: Vec<Value> = nodes
        .into_iter()
        .map(|(node, mut value)| {
            if let Some(map) = value.as_object_mut() {
                map.insert("node".into(), node.into());
            }
            value
        })
        .collect();
    total.insert("nodes".into(), rows.into());
    total.insert(
        "failed_nodes".into(),
        serde_json::to_value(failed).map_err(|e| ApiError::internal(e.to_string()))?,
    );
    Ok(Value::Object(total))
}

/// The cluster's counters from the nodes' (see the module comment).
fn sum<'a>(nodes: impl Iterator<Item = &'a Value>) -> Map<String, Value> {
    let mut total = Map::new();
    for node in nodes {
        let Some(fields) = node.as_object() else {
            continue;
        };
        for (key, value) in fields {
            if key == "timestamp_ms" {
                continue;
            }
            let merged = match total.remove(key) {
                None => value.clone(),
                Some(before) => combine(key, before, value),
            };
            total.insert(key.clone(), merged);
        }
    }
    total
}

fn combine(key: &str, before: Value, value: &Value) -> Value {
    match (before, value) {
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (a.as_u64().unwrap_or(0), b.as_u64().unwrap_or(0));
            if WHOLE.contains(&key) {
                a.max(b).into()
            } else {
                a.saturating_add(b).into()
            }
        }
        (Value::Bool(a), Value::Bool(b)) => (a || *b).into(),
        (Value::Array(a), Value::Array(b)) => a
            .into_iter()
            .zip(b)
            .map(|(x, y)| combine(key, x, y))
            .collect::<Vec<_>>()
            .into(),
        // A field one node's version does not share: the first answer's.
        (before, _) => before,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_clusters_counters_add_up_except_what_every_node_holds_whole() {
        let a = json!({"connections_current": 3, "messages_received_by_qos": [1, 2, 3],
            "retained_messages": 7, "store_unavailable": false, "store_outage_ms": 0,
            "connections_maximum": 4, "timestamp_ms": 1});
        let b = json!({"connections_current": 5, "messages_received_by_qos": [10, 0, 1],
            "retained_messages": 7, "store_unavailable": true, "store_outage_ms": 1500,
            "connections_maximum": 6, "timestamp_ms": 2});
        let total = Value::Object(sum([&a, &b].into_iter()));
        assert_eq!(
            total,
            json!({"connections_current": 8, "messages_received_by_qos": [11, 2, 4],
                "retained_messages": 7, "store_unavailable": true, "store_outage_ms": 1500,
                "connections_maximum": 10})
        );
    }
}
