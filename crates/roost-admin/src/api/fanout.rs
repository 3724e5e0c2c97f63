//! The cluster-wide answers of the client, session and subscription
//! routes (docs/management.md, "In a cluster"): which nodes a request is
//! for (`?node=<id>|all`, default all in a cluster), a list gathered from
//! every node and merged into one page, and a request about one client
//! sent to the node that holds it (its owner record in Redis).
//!
//! **Merging.** Each node is asked for the first `offset + limit` rows of
//! its own list (at most [`MAX_MERGED`]: deeper pages of a cluster-wide
//! list get 400 `PAGE_TOO_DEEP`; ask one node with `?node=` or narrow the
//! filter). Clients and sessions are merged by client id (each node's list
//! is sorted so); subscriptions follow node after node (each node's in its
//! router's order). `meta.count` adds up the nodes' counts.
//!
//! **A node that does not answer** (down, its API unreachable, slower than
//! `peers::PEER_TIMEOUT`) is named in `meta.failed_nodes` with the reason;
//! its rows are missing from the page and from the count.

use axum::Json;
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use reqwest::Method;
use roost_broker::ClusterMember;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::Shared;

/// The deepest row of a cluster-wide list a page may reach (`offset +
/// limit`): each node sends that many rows at most.
pub(crate) const MAX_MERGED: usize = 1_000;

/// Which nodes a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    /// This node only (no cluster, `?node=<this node>`, or a request
    /// another node forwarded).
    Local,
    /// Another node, by id.
    Node(String),
    /// Every node of the cluster.
    All,
}

impl Scope {
    /// From `?node=` and who asks. Outside cluster mode a node other than
    /// this one is 404 `NODE_NOT_FOUND`.
    pub(crate) fn of(
        state: &Shared,
        node: Option<&str>,
        principal: &Principal,
    ) -> Result<Scope, ApiError> {
        if *principal == Principal::Node {
            return Ok(Scope::Local);
        }
        match node {
            None | Some("all") if state.broker.is_clustered() => Ok(Scope::All),
            None | Some("all") => Ok(Scope::Local),
            Some(n) if n == state.node => Ok(Scope::Local),
            Some(n) if state.broker.is_clustered() => Ok(Scope::Node(n.to_string())),
            Some(n) => Err(node_not_found(n)),
        }
    }
}

/// A node that gave no rows to a cluster-wide list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FailedNode {
    /// Its node id.
    pub node: String,
    /// Why: unreachable, timed out, down (lease lapsed), or its API's error.
    pub error: String,
}

fn node_not_found(node: &str) -> ApiError {
    ApiError::not_found("NODE_NOT_FOUND", format!("no node `{node}` in the cluster"))
}

/// 502 `NODE_UNAVAILABLE`: the node a request had to go to did not answer.
fn node_unavailable(node: &str, why: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "NODE_UNAVAILABLE",
        format!("node `{node}` did not answer: {why}"),
    )
}

/// Percent-encodes a path segment or query value (RFC 3986 unreserved
/// characters kept).
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `?k=v&...` of the pairs whose value is set.
pub(crate) fn query(pairs: &[(&str, Option<String>)]) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        if let Some(v) = v {
            out.push(if out.is_empty() { '?' } else { '&' });
            out.push_str(k);
            out.push('=');
            out.push_str(&encode(v));
        }
    }
    out
}

async fn members(state: &Shared) -> Result<Vec<ClusterMember>, ApiError> {
    match state.broker.cluster_members().await {
        Some(Ok(members)) => Ok(members),
        Some(Err(e)) => Err(super::status::cluster_unavailable(&e)),
        None => Ok(Vec::new()),
    }
}

async fn member(state: &Shared, node: &str) -> Result<ClusterMember, ApiError> {
    members(state)
        .await?
        .into_iter()
        .find(|m| m.node == node)
        .ok_or_else(|| node_not_found(node))
}

/// Another node's answer passed on as it came (status and JSON body).
fn relay(answer: crate::peers::PeerAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(answer.body),
    )
        .into_response()
}

/// Sends the request to `node` (`path`: from `/api/v1`, with its query,
/// `node=<node>` added) and passes its answer on; 502 when it gives none.
pub(crate) async fn forward(
    state: &Shared,
    node: &str,
    method: Method,
    path: &str,
    body: Option<Bytes>,
) -> Result<Response, ApiError> {
    let member = member(state, node).await?;
    let sep = if path.contains('?') { '&' } else { '?' };
    let path = format!("{path}{sep}node={}", encode(node));
    state
        .peers
        .call(&state.auth, &member, method, &path, body)
        .await
        .map(relay)
        .map_err(|e| node_unavailable(node, &e.0))
}

/// A request about one client that this node does not hold: sent to the
/// node its owner record names, whose answer is passed on. `Ok(None)`:
/// no other node holds it (the caller answers 404), or the request is not
/// to be sent on (not a cluster, or forwarded already).
pub(crate) async fn to_owner(
    state: &Shared,
    principal: &Principal,
    client_id: &str,
    method: Method,
    path: &str,
    body: Option<Bytes>,
) -> Result<Option<Response>, ApiError> {
    if *principal == Principal::Node || !state.broker.is_clustered() {
        return Ok(None);
    }
    let owner = state
        .broker
        .cluster_owner(client_id)
        .await
        .map_err(|e| super::status::cluster_unavailable(&e))?;
    match owner {
        Some(node) if node != state.node => {
            forward(state, &node, method, path, body).await.map(Some)
        }
        _ => Ok(None),
    }
}

/// One node's part of a list.
pub(crate) struct Part<T> {
    node: String,
    rows: Vec<T>,
    total: usize,
}

/// A list's page as every node answers it.
#[derive(Deserialize)]
struct Answer<T> {
    data: Vec<T>,
    meta: AnswerMeta,
}

#[derive(Deserialize)]
struct AnswerMeta {
    count: Option<usize>,
}

/// Every other node's answer to `GET path` (`path` with its query;
/// `node=<id>` added), all at once: the successful bodies by node, and the
/// nodes that gave none.
pub(crate) async fn ask_all(
    state: &Shared,
    path: &str,
) -> Result<(Vec<(String, Bytes)>, Vec<FailedNode>), ApiError> {
    let members = members(state).await?;
    let mut calls = tokio::task::JoinSet::new();
    for m in members.into_iter().filter(|m| m.node != state.node) {
        let state = std::sync::Arc::clone(state);
        let sep = if path.contains('?') { '&' } else { '?' };
        let path = format!("{path}{sep}node={}", encode(&m.node));
        calls.spawn(async move {
            let answer = state
                .peers
                .call(&state.auth, &m, Method::GET, &path, None)
                .await;
            match answer {
                Ok(a) if a.status.is_success() => Ok((m.node, a.body)),
                Ok(a) => Err(FailedNode {
                    node: m.node,
                    error: format!(
                        "HTTP {}: {}",
                        a.status.as_u16(),
                        String::from_utf8_lossy(&a.body)
                    ),
                }),
                Err(e) => Err(FailedNode {
                    node: m.node,
                    error: e.0,
                }),
            }
        });
    }
    let mut answers = Vec::new();
    let mut failed = Vec::new();
    while let Some(joined) = calls.join_next().await {
        match joined {
            Ok(Ok(answer)) => answers.push(answer),
            Ok(Err(f)) => failed.push(f),
            Err(e) => tracing::error!(error = %e, "management API: a fan-out request task failed"),
        }
    }
    Ok((answers, failed))
}

/// The rows of a cluster-wide list: this node's from `local(depth)`, the
/// others' from `path` + `query` (`&node=<id>&page=1&limit=<depth>` added),
/// all at once.
pub(crate) async fn gather<T, L>(
    state: &Shared,
    path: &str,
    query: &str,
    depth: usize,
    local: L,
) -> Result<(Vec<Part<T>>, Vec<FailedNode>), ApiError>
where
    T: DeserializeOwned,
    L: FnOnce(usize) -> (Vec<T>, usize),
{
    let sep = if query.is_empty() { '?' } else { '&' };
    let (answers, mut failed) =
        ask_all(state, &format!("{path}{query}{sep}page=1&limit={depth}")).await?;
    let (rows, total) = local(depth);
    let mut parts = vec![Part {
        node: state.node.clone(),
        rows,
        total,
    }];
    for (node, body) in answers {
        match serde_json::from_slice::<Answer<T>>(&body) {
            Ok(answer) => parts.push(Part {
                total: answer.meta.count.unwrap_or(answer.data.len()),
                rows: answer.data,
                node,
            }),
            Err(e) => failed.push(FailedNode {
                node,
                error: format!("unreadable answer: {e}"),
            }),
        }
    }
    parts.sort_by(|a, b| a.node.cmp(&b.node));
    failed.sort_by(|a, b| a.node.cmp(&b.node));
    Ok((parts, failed))
}

/// `offset + limit`, or 400 `PAGE_TOO_DEEP` beyond [`MAX_MERGED`].
pub(crate) fn depth(offset: usize, limit: u32) -> Result<usize, ApiError> {
    let depth = offset.saturating_add(limit as usize);
    if depth > MAX_MERGED {
        return Err(ApiError::bad_request(
            "PAGE_TOO_DEEP",
            format!(
                "a cluster-wide list pages down to row {MAX_MERGED}; ask one node with ?node=<id>, or narrow the query"
            ),
        ));
    }
    Ok(depth)
}

/// Rows `offset..offset+limit` of the parts merged by `key` (each part
/// sorted by it), each row tagged with its node; and the total.
pub(crate) fn merge_sorted<T, K: Ord>(
    parts: Vec<Part<T>>,
    offset: usize,
    limit: usize,
    tag: impl Fn(&mut T, &str),
    key: impl Fn(&T) -> K,
) -> (Vec<T>, usize) {
    let total = parts.iter().map(|p| p.total).sum();
    let mut all: Vec<T> = Vec::new();
    for part in parts {
        for mut row in part.rows {
            tag(&mut row, &part.node);
            all.push(row);
        }
    }
    // Stable: equal keys (one client id on two nodes during a takeover)
    // stay in node order.
    all.sort_by_key(|row| key(row));
    (all.into_iter().skip(offset).take(limit).collect(), total)
}

/// Rows `offset..offset+limit` of the parts one after the other (node
/// order), each tagged with its node; and the total.
pub(crate) fn concat<T>(
    parts: Vec<Part<T>>,
    offset: usize,
    limit: usize,
    tag: impl Fn(&mut T, &str),
) -> (Vec<T>, usize) {
    let total = parts.iter().map(|p| p.total).sum();
    let mut page = Vec::new();
    let mut base = 0usize;
    for part in parts {
        for (i, mut row) in part.rows.into_iter().enumerate() {
            let at = base + i;
            if at >= offset && page.len() < limit {
                tag(&mut row, &part.node);
                page.push(row);
            }
        }
        base += part.total;
    }
    (page, total)
}

/// A list answer with `meta.failed_nodes`.
pub(crate) fn with_failed<T: ToSchema>(
    mut list: super::page::List<T>,
    failed: Vec<FailedNode>,
) -> Json<super::page::List<T>> {
    list.meta.failed_nodes = Some(failed);
    Json(list)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn part(node: &str, rows: &[u32], total: usize) -> Part<(u32, String)> {
        Part {
            node: node.into(),
            rows: rows.iter().map(|r| (*r, String::new())).collect(),
            total,
        }
    }

    fn tag(row: &mut (u32, String), node: &str) {
        row.1 = node.to_string();
    }

    #[test]
    fn sorted_parts_merge_into_one_page_of_the_whole_order() {
        // Each node sent its first 4 rows (offset 2 + limit 2).
        let parts = vec![part("a", &[1, 4, 6, 8], 10), part("b", &[2, 3, 9], 3)];
        let (page, total) = merge_sorted(parts, 2, 2, tag, |r| r.0);
        assert_eq!(total, 13);
        assert_eq!(page, [(3, "b".to_string()), (4, "a".to_string())]);
    }

    #[test]
    fn concatenated_parts_page_across_a_node_boundary() {
        // Node a has 3 rows in all, b 5; rows 2..5 are a's last and b's first two.
        let parts = vec![
            part("a", &[10, 11, 12], 3),
            part("b", &[20, 21, 22, 23, 24], 5),
        ];
        let (page, total) = concat(parts, 2, 3, tag);
        assert_eq!(total, 8);
        let got: Vec<(u32, &str)> = page.iter().map(|(r, n)| (*r, n.as_str())).collect();
        assert_eq!(got, [(12, "a"), (20, "b"), (21, "b")]);
    }

    #[test]
    fn a_query_string_encodes_its_values_and_skips_unset_ones() {
        let q = query(&[
            ("like", Some("a b/+".into())),
            ("username", None),
            ("filter", Some("x/#".into())),
        ]);
        assert_eq!(q, "?like=a%20b%2F%2B&filter=x%2F%23");
    }

    #[test]
    fn pages_deeper_than_the_merge_cap_are_refused() {
        assert_eq!(depth(900, 100).unwrap(), 1_000);
        assert_eq!(depth(901, 100).unwrap_err().body.code, "PAGE_TOO_DEEP");
    }
}
