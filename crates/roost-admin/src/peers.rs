//! The other nodes' management APIs, in cluster mode (docs/management.md,
//! "In a cluster"): where they are (each node announces its API's URL in
//! its node hash in Redis), the credential they accept from each other,
//! and one bounded HTTP request to one of them.
//!
//! **The node credential.** A request this node authenticated (API key or
//! login) is forwarded with `Authorization: RoostNode <secret>`, a random
//! 256-bit secret kept in Redis (`<prefix>{sys}:admin-secret`, made by the
//! first node that needs it). API keys and dashboard logins stay per node:
//! an operator logs in to one node and sees the cluster. Whoever can read
//! the cluster's Redis can act as any node anyway (publish, kick, ban), so
//! the secret adds no new holder of that power. A forwarded request is
//! answered by the node it reaches, never forwarded again (no loops).
//!
//! **Bounds.** Every request has a connect timeout of [`CONNECT_TIMEOUT`]
//! and a whole-request timeout of [`PEER_TIMEOUT`]; an answer larger than
//! [`MAX_ANSWER`] is refused. A fan-out makes one request per node at once
//! (nodes are few). A node that missed a lease renewal (paused, stalled:
//! [`late`]) gets [`LATE_TIMEOUT`] instead, so a stopped node holds a
//! cluster-wide answer for a second, not five, until its lease lapses and
//! it is skipped.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use roost_broker::BrokerHandle;
use roost_broker::ClusterMember as Member;

use crate::auth::{Auth, NODE_SCHEME};

/// A node's API that does not answer within this is reported, not waited for.
pub(crate) const PEER_TIMEOUT: Duration = Duration::from_secs(5);
/// A node that missed a lease renewal gets this long to answer.
pub(crate) const LATE_TIMEOUT: Duration = Duration::from_secs(1);
/// Connecting to a node's API (a dead host) gives up after this.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest answer taken from another node (1000 rows of clients are
/// about 400 KB).
const MAX_ANSWER: usize = 8 * 1024 * 1024;

/// A request to another node that got no usable answer.
#[derive(Debug, Clone)]
pub(crate) struct PeerError(pub(crate) String);

/// What another node answered.
#[derive(Debug)]
pub(crate) struct PeerAnswer {
    pub(crate) status: reqwest::StatusCode,
    pub(crate) body: Bytes,
}

/// The HTTP client to the other nodes.
#[derive(Debug)]
pub(crate) struct Peers {
    http: Option<reqwest::Client>,
}

impl Peers {
    pub(crate) fn new() -> Self {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let http = reqwest::Client::builder()
            .timeout(PEER_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build();
        let http = match http {
            Ok(http) => Some(http),
            Err(e) => {
                tracing::error!(error = %e, "management API: no HTTP client for the other nodes; cluster-wide lists answer for this node only");
                None
            }
        };
        Self { http }
    }

    /// One request to `member`'s API (`path` with its query, from `/api/v1`),
    /// with the node credential.
    pub(crate) async fn call(
        &self,
        auth: &Auth,
        member: &Member,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<PeerAnswer, PeerError> {
        let http = self
            .http
            .as_ref()
            .ok_or_else(|| PeerError("no HTTP client".into()))?;
        if !member.live {
            return Err(PeerError("down: its lease lapsed".into()));
        }
        let base = member
            .admin_url
            .as_deref()
            .ok_or_else(|| PeerError("it announces no management API".into()))?;
        let secret = auth
            .node_secret()
            .ok_or_else(|| PeerError("the cluster's node credential is not read yet".into()))?;
        let url = format!("{}{path}", base.trim_end_matches('/'));
        let mut request = http.request(method, &url).header(
            reqwest::header::AUTHORIZATION,
            format!("{NODE_SCHEME}{secret}"),
        );
        let late = late(member, crate::api::status::now_ms());
        if late {
            request = request.timeout(LATE_TIMEOUT);
        }
        let why = |e: &reqwest::Error| match (late, e.is_timeout()) {
            (true, true) => format!(
                "{base}: no answer within {} ms (it missed a lease renewal)",
                LATE_TIMEOUT.as_millis()
            ),
            _ => format!("{base}: {}", describe(e)),
        };
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let mut response = request.send().await.map_err(|e| PeerError(why(&e)))?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| PeerError(why(&e)))? {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(PeerError(format!(
                    "{base}: answer larger than {MAX_ANSWER} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(PeerAnswer {
            status,
            body: body.into(),
        })
    }
}

/// Whether `member` missed a lease renewal: a node renews (and announces)
/// every third of its lease, so its lease runs out in more than two thirds
/// of a lease unless a renewal was missed (a second of slack for a loaded
/// host). Its lease length is read from its
/// last announcement (`lease_until_ms - announced_ms`); a node that
/// announced nothing is not judged.
pub(crate) fn late(member: &Member, now_ms: u64) -> bool {
    missed_renewal(member.lease_until_ms, member.announced_ms, now_ms)
}

fn missed_renewal(lease_until_ms: u64, announced_ms: Option<u64>, now_ms: u64) -> bool {
    let Some(announced) = announced_ms else {
        return false;
    };
    let lease = lease_until_ms.saturating_sub(announced);
    lease_until_ms.saturating_sub(now_ms) + 1_000 < lease / 3 * 2
}

/// A reqwest error without its URL, with its cause.
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "no answer within the timeout".into();
    }
    if e.is_connect() {
        return "connection refused or unreachable".into();
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// Cluster mode, at start: reads (or makes) the node credential and
/// announces this API's URL to the other nodes, retried every few seconds
/// while Redis does not answer. Runs on a task of its own.
pub(crate) async fn join(broker: BrokerHandle, state: Arc<crate::state::AppState>, url: String) {
    let mut proposed = [0u8; 32];
    rand::fill(&mut proposed);
    let proposed = hex::encode(proposed);
    let mut secret_read = false;
    loop {
        if !secret_read {
            match broker.cluster_admin_secret(&proposed).await {
                Ok(Some(secret)) => {
                    state.auth.set_node_secret(&secret);
                    secret_read = true;
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "management API: the cluster's node credential could not be read; retrying")
                }
            }
        }
        if secret_read {
            match broker.cluster_announce("admin", &url).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "management API: its URL could not be announced to the cluster; retrying")
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
            () = broker.shutdown_begun() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_is_late_once_it_misses_a_lease_renewal() {
        // A 9 s lease announced at t=100 s: renewed by t=103 s normally.
        let late = |now| missed_renewal(109_000, Some(100_000), now);
        assert!(!late(100_000));
        assert!(!late(104_000), "a renewal up to a second late");
        assert!(late(104_100), "a renewal missed");
        assert!(
            !missed_renewal(109_000, None, 108_000),
            "no announcement, not judged"
        );
    }
}
