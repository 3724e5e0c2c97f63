//! The management API's views of the broker (docs/management.md): clients
//! with their session's counts, subscriptions, routed filters, and the
//! password-file users. Read under the registry's and slots' locks one at a
//! time; the router only through `Core` (`core/listing.rs`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use roost_codec::{ProtocolVersion, RetainHandling};
use roost_router::Subscription;

use crate::core::Core;
use crate::slot::SessionSlot;

/// One session as the management API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ClientDetail {
    /// The client identifier.
    pub client_id: String,
    /// The user name it was authorized as.
    pub username: Option<String>,
    /// A connection is attached; otherwise the session is parked offline.
    pub connected: bool,
    /// The connection's peer address (connected only).
    pub peer: Option<String>,
    /// `5.0`, `3.1.1` or `3.1` (connected only).
    pub protocol: Option<&'static str>,
    /// `tcp`, `tls`, `ws`, `wss`, `quic` or `unix` (connected only).
    pub listener: Option<String>,
    /// Subscriptions in the router.
    pub subscriptions: usize,
    /// Messages waiting: the parked session's offline queue, or a live
    /// connection's outbox (deliveries its connection has not taken yet).
    pub queued: usize,
    /// QoS 1/2 messages sent and not yet acknowledged (a parked session's,
    /// or a live one's from [`crate::BrokerHandle::client_live`], which asks
    /// its connection task).
    pub inflight: Option<usize>,
    /// Seconds until a parked session expires (`None`: connected, or never).
    pub expires_in_s: Option<u64>,
    /// Messages dropped for this session so far.
    pub dropped: u64,
    /// When the live connection attached, seconds since the Unix epoch
    /// (connected only).
    pub connected_at: Option<u64>,
    /// The live connection's CONNECT asked for Clean Start (connected only).
    pub clean_start: Option<bool>,
    /// Keep-alive in force, seconds; 0 = none (connected, from
    /// [`crate::BrokerHandle::client_live`] only).
    pub keep_alive_s: Option<u16>,
    /// Session Expiry Interval in force, seconds (`u32::MAX` = never; from
    /// [`crate::BrokerHandle::client_live`] for a live session).
    pub session_expiry_interval_s: Option<u32>,
}

/// One subscription.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct SubscriptionInfo {
    /// The subscriber.
    pub client_id: String,
    /// The filter as subscribed (`$share/<group>/` prefix included).
    pub filter: String,
    /// Granted QoS.
    pub qos: u8,
    /// No Local.
    pub no_local: bool,
    /// Retain As Published.
    pub retain_as_published: bool,
    /// Retain Handling (0, 1, 2).
    pub retain_handling: u8,
    /// Subscription Identifier.
    pub subscription_id: Option<u32>,
}

/// One routed filter.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct RouteInfo {
    /// The filter (`$share/<group>/...` for a shared group).
    pub filter: String,
    /// Subscribers (members, for a shared group).
    pub subscribers: usize,
}

/// One page of a listing and the number of matching items in all.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Page<T> {
    /// The items of the page.
    pub items: Vec<T>,
    /// Matching items in all pages.
    pub total: usize,
}

/// Which clients a listing shows.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ClientQuery {
    /// Exactly this client id.
    pub client_id: Option<String>,
    /// Exactly this user name.
    pub username: Option<String>,
    /// Client ids containing this.
    pub like: Option<String>,
    /// Connected (`Some(true)`) or parked (`Some(false)`) only.
    pub connected: Option<bool>,
}

/// Why a password-file user operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UsersError {
    /// `[auth.password_file]` is not configured.
    #[error("no password file is configured ([auth.password_file])")]
    NoPasswordFile,
    /// The user is not in the file.
    #[error("no such user")]
    NotFound,
    /// The user is already in the file.
    #[error("the user exists")]
    Exists,
    /// The file could not be read or written, or a bad name.
    #[error("{0}")]
    File(String),
}

fn protocol(version: ProtocolVersion) -> &'static str {
    match version {
        ProtocolVersion::V5 => "5.0",
        ProtocolVersion::V311 => "3.1.1",
        ProtocolVersion::V31 => "3.1",
    }
}

fn info(
    client_id: &str,
    filter: &str,
    group: Option<&str>,
    sub: &Subscription,
) -> SubscriptionInfo {
    SubscriptionInfo {
        client_id: client_id.to_string(),
        filter: match group {
            Some(group) => format!("$share/{group}/{filter}"),
            None => filter.to_string(),
        },
        qos: sub.options.qos as u8,
        no_local: sub.options.no_local,
        retain_as_published: sub.options.retain_as_published,
        retain_handling: match sub.options.retain_handling {
            RetainHandling::SendAtSubscribe => 0,
            RetainHandling::SendIfNew => 1,
            RetainHandling::DoNotSend => 2,
        },
        subscription_id: sub.identifier,
    }
}

/// The detail of one slot; `subscriptions` counted by the caller.
fn detail(slot: &SessionSlot, subscriptions: usize, now: Instant) -> Option<ClientDetail> {
    let inner = slot.inner.lock();
    if inner.ended {
        return None;
    }
    let username = inner
        .owner
        .as_ref()
        .and_then(|owner| owner.client.username.as_ref())
        .map(|u| u.to_string());
    let mut out = ClientDetail {
        client_id: slot.client_id.to_string(),
        username,
        connected: inner.link.is_some(),
        peer: None,
        protocol: None,
        listener: None,
        subscriptions,
        queued: inner.outbox.len(),
        inflight: None,
        expires_in_s: None,
        dropped: slot.dropped.load(std::sync::atomic::Ordering::Relaxed),
        connected_at: None,
        clean_start: None,
        keep_alive_s: None,
        session_expiry_interval_s: None,
    };
    if let Some(link) = &inner.link {
        out.connected_at = Some(u64::from(inner.connected_at));
        out.clean_start = Some(inner.clean_start);
        out.peer = Some(link.client.peer.to_string());
        out.protocol = Some(protocol(link.client.protocol));
        out.listener = Some(format!("{:?}", link.client.listener).to_ascii_lowercase());
        out.username = link.client.username.as_ref().map(|u| u.to_string());
    } else if let Some(parked) = &inner.parked {
        out.queued += parked.state.queued_len();
        out.inflight = Some(parked.state.inflight_len());
        out.session_expiry_interval_s = Some(parked.state.session_expiry_interval());
        out.expires_in_s = parked
            .expires_at
            .map(|at| at.saturating_duration_since(now).as_secs());
    }
    Some(out)
}

/// Subscriptions per slot (by address), from one router walk.
fn subscription_counts(core: &Core) -> HashMap<usize, usize> {
    let mut counts: HashMap<usize, usize> = HashMap::new();
    core.for_each_subscription(|_, _, slot, _| {
        *counts.entry(std::ptr::from_ref(slot) as usize).or_default() += 1;
    });
    counts
}

fn matches(query: &ClientQuery, detail: &ClientDetail) -> bool {
    query
        .client_id
        .as_ref()
        .is_none_or(|id| *id == detail.client_id)
        && query
            .username
            .as_ref()
            .is_none_or(|u| detail.username.as_ref() == Some(u))
        && query
            .like
            .as_ref()
            .is_none_or(|like| detail.client_id.contains(like.as_str()))
        && query.connected.is_none_or(|c| c == detail.connected)
}

/// The sessions `query` selects, sorted by client id, `offset..offset+limit`.
pub(crate) fn clients(
    core: &Core,
    query: &ClientQuery,
    offset: usize,
    limit: usize,
) -> Page<ClientDetail> {
    let counts = subscription_counts(core);
    let now = Instant::now();
    let mut all = Vec::new();
    core.sessions().for_each(|slot| {
        let count = counts
            .get(&(Arc::as_ptr(slot) as usize))
            .copied()
            .unwrap_or(0);
        if let Some(d) = detail(slot, count, now)
            && matches(query, &d)
        {
            all.push(d);
        }
    });
    all.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    let total = all.len();
    Page {
        items: all.into_iter().skip(offset).take(limit).collect(),
        total,
    }
}

/// One session.
pub(crate) fn client(core: &Core, client_id: &str) -> Option<ClientDetail> {
    let slot = core.sessions().get(client_id)?;
    let subscriptions = core.subscriptions_of(&slot).len();
    detail(&slot, subscriptions, Instant::now())
}

/// The subscriptions of one session, sorted by filter.
pub(crate) fn client_subscriptions(core: &Core, client_id: &str) -> Option<Vec<SubscriptionInfo>> {
    let slot = core.sessions().get(client_id)?;
    if slot.inner.lock().ended {
        return None;
    }
    let mut subs: Vec<SubscriptionInfo> = core
        .subscriptions_of(&slot)
        .iter()
        .map(|(filter, group, sub)| info(client_id, filter, group.as_deref(), sub))
        .collect();
    subs.sort_by(|a, b| a.filter.cmp(&b.filter));
    Some(subs)
}

/// Every subscription, optionally of one client or one exact filter, in
/// trie order, `offset..offset+limit`.
pub(crate) fn subscriptions(
    core: &Core,
    client_id: Option<&str>,
    filter: Option<&str>,
    offset: usize,
    limit: usize,
) -> Page<SubscriptionInfo> {
    let mut total = 0;
    let mut items = Vec::new();
    core.for_each_subscription(|f, group, slot, sub| {
        if client_id.is_some_and(|id| *id != *slot.client_id) {
            return;
        }
        let row_filter = match group {
            Some(g) => format!("$share/{g}/{f}"),
            None => f.to_string(),
        };
        if filter.is_some_and(|want| want != row_filter && want != f) {
            return;
        }
        if total >= offset && items.len() < limit {
            items.push(info(&slot.client_id, f, group, sub));
        }
        total += 1;
    });
    Page { items, total }
}

/// Every routed filter with its number of subscribers, `offset..offset+limit`.
pub(crate) fn routes(core: &Core, offset: usize, limit: usize) -> Page<RouteInfo> {
    let mut per_filter: Vec<(String, usize)> = Vec::new();
    core.for_each_subscription(|f, group, _, _| {
        let name = match group {
            Some(g) => format!("$share/{g}/{f}"),
            None => f.to_string(),
        };
        match per_filter.last_mut() {
            Some((last, n)) if *last == name => *n += 1,
            _ => per_filter.push((name, 1)),
        }
    });
    // Direct subscribers and each group of one trie node come out together,
    // but a group's members follow the direct ones: merge equal names.
    per_filter.sort_by(|a, b| a.0.cmp(&b.0));
    per_filter.dedup_by(|next, kept| {
        if next.0 == kept.0 {
            kept.1 += next.1;
            true
        } else {
            false
        }
    });
    let total = per_filter.len();
    Page {
        items: per_filter
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|(filter, subscribers)| RouteInfo {
                filter,
                subscribers,
            })
            .collect(),
        total,
    }
}

fn password_file(core: &Core) -> Result<PathBuf, UsersError> {
    core.config
        .auth
        .password_file
        .as_ref()
        .map(|p| p.path.clone())
        .ok_or(UsersError::NoPasswordFile)
}

/// The users of the password file, sorted.
pub(crate) fn users(core: &Core) -> Result<Vec<String>, UsersError> {
    let path = password_file(core)?;
    let file =
        roost_auth::PasswordFile::load(&path).map_err(|e| UsersError::File(e.to_string()))?;
    let mut users = file.users();
    users.sort();
    Ok(users)
}

/// Adds (`create`) or changes a user's password in the password file,
/// hashed as `roost passwd` and Mosquitto 2 do by default (`$7$`, PBKDF2).
pub(crate) fn set_user(
    core: &Core,
    user: &str,
    password: &str,
    create: bool,
) -> Result<(), UsersError> {
    let path = password_file(core)?;
    let exists = users(core)?.iter().any(|u| u == user);
    match (create, exists) {
        (true, true) => return Err(UsersError::Exists),
        (false, false) => return Err(UsersError::NotFound),
        _ => {}
    }
    roost_auth::password::set_password(
        &path,
        user,
        password,
        roost_auth::password::HashKind::default(),
    )
    .map_err(|e| UsersError::File(e.to_string()))
}

/// Removes a user from the password file.
pub(crate) fn remove_user(core: &Core, user: &str) -> Result<(), UsersError> {
    let path = password_file(core)?;
    match roost_auth::password::delete_user(&path, user) {
        Ok(true) => {}
        Ok(false) => return Err(UsersError::NotFound),
        Err(e) => return Err(UsersError::File(e.to_string())),
    }
    // An empty file is refused by the reload (it looks like one being
    // rewritten), which would keep the removed user: a file that lists
    // nobody holds a comment line.
    let empty = std::fs::read_to_string(&path).is_ok_and(|text| text.trim().is_empty());
    if empty {
        roost_auth::write_atomically(
            &path,
            b"# no users (the last one was removed by the management API)\n",
        )
        .map_err(|e| UsersError::File(e.to_string()))?;
    }
    Ok(())
}
