//! Banned clients: by client id, user name or IP network, each with an
//! optional expiry. Checks are two hash lookups and a scan of the (short)
//! network list.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use parking_lot::RwLock;
use roost_hooks::{AuthResult, Authenticator, BoxFuture, ClientInfo, ConnectRequest, ReasonCode};
use serde::Deserialize;

use crate::ConfigError;
use crate::acl::Who;

/// What a ban applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BanTarget {
    /// A client identifier.
    ClientId(String),
    /// A user name.
    Username(String),
    /// An address or network.
    Ip(IpNet),
}

impl BanTarget {
    /// Parses `client:<id>`, `user:<name>` or `ip:<CIDR>` (the ACL syntax).
    pub fn parse(text: &str) -> Result<Self, String> {
        match Who::parse(text)? {
            Who::Client(id) => Ok(Self::ClientId(id)),
            Who::User(name) => Ok(Self::Username(name)),
            Who::Ip(net) => Ok(Self::Ip(net)),
            Who::All => Err("a ban needs client:<id>, user:<name> or ip:<cidr>, not all".into()),
        }
    }
}

impl fmt::Display for BanTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClientId(id) => write!(f, "client:{id}"),
            Self::Username(name) => write!(f, "user:{name}"),
            Self::Ip(net) => write!(f, "ip:{net}"),
        }
    }
}

/// One ban.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    /// Who is banned.
    pub target: BanTarget,
    /// When the ban ends; `None` = never.
    pub expires_at: Option<SystemTime>,
}

impl Ban {
    /// A ban with an optional end.
    pub fn new(target: BanTarget, expires_at: Option<SystemTime>) -> Self {
        Self { target, expires_at }
    }
}

/// One `[[auth.banned.entries]]` item.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BanEntryConfig {
    /// `client:<id>`, `user:<name>` or `ip:<CIDR>`.
    pub who: String,
    /// End of the ban as Unix seconds; absent = permanent.
    #[serde(default)]
    pub expires_at: Option<u64>,
}

/// `[auth.banned]` settings: bans in force at startup.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BannedConfig {
    /// The bans.
    #[serde(default)]
    pub entries: Vec<BanEntryConfig>,
}

#[derive(Debug, Default)]
struct Sets {
    clients: HashMap<String, Option<SystemTime>>,
    users: HashMap<String, Option<SystemTime>>,
    nets: Vec<(IpNet, Option<SystemTime>)>,
}

/// The ban list; shared (`Arc`) between the authenticator and whatever
/// administers it.
#[derive(Debug, Default)]
pub struct BanList {
    sets: RwLock<Sets>,
}

fn active(expires_at: Option<SystemTime>, now: SystemTime) -> bool {
    expires_at.is_none_or(|t| t > now)
}

impl BanList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// A list holding the configured bans.
    pub fn from_config(config: &BannedConfig) -> Result<Self, ConfigError> {
        let list = Self::new();
        for (i, entry) in config.entries.iter().enumerate() {
            let target = BanTarget::parse(&entry.who)
                .map_err(|m| ConfigError::invalid(format!("banned entry {}: {m}", i + 1)))?;
            let expires_at = match entry.expires_at {
                None => None,
                // `UNIX_EPOCH + d` panics past the platform's time range.
                Some(s) => Some(UNIX_EPOCH.checked_add(Duration::from_secs(s)).ok_or_else(
                    || {
                        ConfigError::invalid(format!(
                            "banned entry {}: expires_at {s} is out of range",
                            i + 1
                        ))
                    },
                )?),
            };
            list.add(Ban::new(target, expires_at));
        }
        Ok(list)
    }

    /// Adds (or replaces) a ban.
    pub fn add(&self, ban: Ban) {
        let mut sets = self.sets.write();
        match ban.target {
            BanTarget::ClientId(id) => {
                sets.clients.insert(id, ban.expires_at);
            }
            BanTarget::Username(name) => {
                sets.users.insert(name, ban.expires_at);
            }
            BanTarget::Ip(net) => {
                sets.nets.retain(|(n, _)| *n != net);
                sets.nets.push((net, ban.expires_at));
            }
        }
    }

    /// Lifts a ban; returns false when there was none.
    pub fn remove(&self, target: &BanTarget) -> bool {
        let mut sets = self.sets.write();
        match target {
            BanTarget::ClientId(id) => sets.clients.remove(id).is_some(),
            BanTarget::Username(name) => sets.users.remove(name).is_some(),
            BanTarget::Ip(net) => {
                let before = sets.nets.len();
                sets.nets.retain(|(n, _)| n != net);
                sets.nets.len() != before
            }
        }
    }

    /// The bans in force at `now`.
    pub fn list(&self, now: SystemTime) -> Vec<Ban> {
        let sets = self.sets.read();
        let clients = sets
            .clients
            .iter()
            .map(|(k, t)| Ban::new(BanTarget::ClientId(k.clone()), *t));
        let users = sets
            .users
            .iter()
            .map(|(k, t)| Ban::new(BanTarget::Username(k.clone()), *t));
        let nets = sets
            .nets
            .iter()
            .map(|(n, t)| Ban::new(BanTarget::Ip(*n), *t));
        clients
            .chain(users)
            .chain(nets)
            .filter(|b| active(b.expires_at, now))
            .collect()
    }

    /// Drops expired bans; returns how many.
    pub fn purge_expired(&self, now: SystemTime) -> usize {
        let mut sets = self.sets.write();
        let before = sets.clients.len() + sets.users.len() + sets.nets.len();
        sets.clients.retain(|_, t| active(*t, now));
        sets.users.retain(|_, t| active(*t, now));
        sets.nets.retain(|(_, t)| active(*t, now));
        before - (sets.clients.len() + sets.users.len() + sets.nets.len())
    }

    /// True when the client's id, user name or address is banned at `now`.
    pub fn is_banned(&self, client: &ClientInfo, now: SystemTime) -> bool {
        let sets = self.sets.read();
        if let Some(t) = sets.clients.get(&*client.client_id)
            && active(*t, now)
        {
            return true;
        }
        if let Some(user) = client.username.as_deref()
            && let Some(t) = sets.users.get(user)
            && active(*t, now)
        {
            return true;
        }
        ip_banned(&sets.nets, client.peer.ip().to_canonical(), now)
    }
}

fn ip_banned(nets: &[(IpNet, Option<SystemTime>)], ip: IpAddr, now: SystemTime) -> bool {
    nets.iter().any(|(n, t)| n.contains(&ip) && active(*t, now))
}

/// Refuses banned clients with CONNACK 0x8A Banned; ignores the others.
#[derive(Debug, Clone)]
pub struct BanAuthenticator {
    list: Arc<BanList>,
}

impl BanAuthenticator {
    /// An authenticator over a shared list.
    pub fn new(list: Arc<BanList>) -> Self {
        Self { list }
    }

    /// The list it checks.
    pub fn list(&self) -> &Arc<BanList> {
        &self.list
    }
}

impl Authenticator for BanAuthenticator {
    fn name(&self) -> &str {
        "banned"
    }

    fn authenticate<'a>(&'a self, request: &'a ConnectRequest<'a>) -> BoxFuture<'a, AuthResult> {
        let result = if self.list.is_banned(request.client, SystemTime::now()) {
            tracing::info!(client_id = %request.client.client_id, peer = %request.client.peer, "banned client refused");
            AuthResult::Refuse(ReasonCode::BANNED)
        } else {
            AuthResult::Ignore
        };
        roost_hooks::ready(result)
    }
}
