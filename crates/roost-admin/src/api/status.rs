//! `status`, `stats`, `nodes`, `listeners`: what the broker is and does.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use roost_broker::config::ListenAddr;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::Shared;

/// `GET /api/v1/status`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    /// Node name.
    pub node: String,
    /// Roost version.
    pub version: String,
    /// Seconds since the broker started.
    pub uptime_s: u64,
    /// Start time, RFC 3339 (UTC).
    pub started_at: String,
}

/// One node of `GET /api/v1/nodes`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Node {
    /// Node name.
    pub node: String,
    /// `running`, or `down` for a cluster node whose lease lapsed (it is
    /// removed from the list once another node collects it, within a third
    /// of a lease).
    pub status: &'static str,
    /// Roost version.
    pub version: Option<String>,
    /// Seconds since the node started.
    pub uptime_s: Option<u64>,
    /// Connections open now (other cluster nodes: at their last lease
    /// renewal, at most a third of a lease ago).
    pub connections: Option<u64>,
    /// Sessions held, connected and parked (other nodes: as `connections`).
    pub sessions: Option<u64>,
    /// This is the node that answered.
    pub local: bool,
    /// Cluster mode: when the node's lease lapses unless renewed, Unix
    /// milliseconds.
    pub lease_until_ms: Option<u64>,
    /// Cluster mode: when the node last announced its counts, Unix
    /// milliseconds (this node: now).
    pub announced_ms: Option<u64>,
    /// The URLs clients reach the node at (its MQTT listeners).
    pub addresses: Vec<String>,
    /// Cluster mode: the URL of the node's management API, as it announced
    /// it (`[http] advertise_url`).
    pub admin_url: Option<String>,
}

/// One listener of `GET /api/v1/listeners`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Listener {
    /// `<kind>:<address>`, unique.
    pub name: String,
    /// `tcp`, `tls`, `ws`, `wss`, `quic` or `unix`.
    pub kind: String,
    /// Bound address (`IP:port`, or a socket path).
    pub address: String,
    /// The URL clients use (`mqtt://...`, `ws://.../mqtt`).
    pub url: String,
}

pub(crate) fn uptime_s(state: &Shared) -> u64 {
    SystemTime::now()
        .duration_since(state.broker.started_at())
        .map_or(0, |d| d.as_secs())
}

/// Unix milliseconds now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// RFC 3339 in UTC, second precision, without a date library.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

/// The broker's identity and uptime.
#[utoipa::path(get, path = "/api/v1/status", tag = "status",
    responses((status = 200, body = Status), (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn status(State(state): State<Shared>) -> Json<Status> {
    Json(Status {
        node: state.node.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_s: uptime_s(&state),
        started_at: rfc3339(state.broker.started_at()),
    })
}

/// The nodes: this one, or in cluster mode every node in Redis's node set
/// with what it announced at its last lease renewal (read from Redis at
/// each request).
#[utoipa::path(get, path = "/api/v1/nodes", tag = "status",
    responses((status = 200, body = [Node]),
              (status = 503, description = "CLUSTER_UNAVAILABLE: Redis did not answer", body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn nodes(State(state): State<Shared>) -> Result<Json<Vec<Node>>, ApiError> {
    let stats = state.broker.stats();
    let this = Node {
        node: state.node.clone(),
        status: "running",
        version: Some(env!("CARGO_PKG_VERSION").to_string()),
        uptime_s: Some(uptime_s(&state)),
        connections: Some(stats.connections_current),
        sessions: Some(stats.sessions),
        local: true,
        lease_until_ms: None,
        announced_ms: None,
        addresses: state
            .broker
            .listeners()
            .iter()
            .map(|l| l.url.clone())
            .collect(),
        admin_url: None,
    };
    let Some(members) = state.broker.cluster_members().await else {
        return Ok(Json(vec![this]));
    };
    let members = members.map_err(|e| cluster_unavailable(&e))?;
    let now_ms = now_ms();
    let nodes = members
        .into_iter()
        .map(|m| {
            if m.node == this.node {
                return Node {
                    lease_until_ms: Some(m.lease_until_ms),
                    announced_ms: Some(now_ms),
                    admin_url: m.admin_url,
                    ..this.clone()
                };
            }
            Node {
                status: if m.live { "running" } else { "down" },
                version: m.version,
                uptime_s: m.started_ms.map(|s| now_ms.saturating_sub(s) / 1_000),
                connections: m.connections,
                sessions: m.sessions,
                local: false,
                lease_until_ms: Some(m.lease_until_ms),
                announced_ms: m.announced_ms,
                addresses: m.addresses,
                admin_url: m.admin_url,
                node: m.node,
            }
        })
        .collect();
    Ok(Json(nodes))
}

/// 503 `CLUSTER_UNAVAILABLE`: Redis did not answer a read of the node list.
pub(crate) fn cluster_unavailable(e: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "CLUSTER_UNAVAILABLE",
        format!("the cluster's node list could not be read: {e}"),
    )
}

/// The MQTT listeners.
#[utoipa::path(get, path = "/api/v1/listeners", tag = "status",
    responses((status = 200, body = [Listener]), (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn listeners(State(state): State<Shared>) -> Json<Vec<Listener>> {
    Json(
        state
            .broker
            .listeners()
            .iter()
            .map(|l| {
                let address = match &l.addr {
                    ListenAddr::Inet(addr) => addr.to_string(),
                    ListenAddr::Unix(path) => path.display().to_string(),
                };
                let kind = format!("{:?}", l.kind).to_ascii_lowercase();
                Listener {
                    name: format!("{kind}:{address}"),
                    kind,
                    address,
                    url: l.url.clone(),
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_709_210_096);
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56Z");
    }
}
