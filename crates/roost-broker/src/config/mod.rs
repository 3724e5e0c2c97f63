//! Broker configuration: one TOML file, overridable by `ROOST_*` environment
//! variables. Unknown keys are errors that name the key and its line.

mod cluster;
mod http;
mod store;
mod sys;

pub use cluster::{ClusterConfig, ClusterRedisConfig};
pub use http::{DEFAULT_HTTP_PORT, HttpConfig};
pub use store::{DurabilityConfig, RedisStoreConfig, StoreBackend, StoreConfig};
pub use sys::SysConfig;

use std::path::Path;
use std::time::Duration;

use roost_codec::QoS;
use roost_session::{QueueFullPolicy, SessionConfig};
use serde::Deserialize;

pub use crate::transport::config::{
    DEFER_ACCEPT_SECS, IdentitySource, ListenAddr, ListenerConfig, ListenerKind, QuicOptions,
    SniCertificate, TlsConfig, TlsVersion, WebSocketOptions,
};

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Listeners; when empty, one TCP listener on 127.0.0.1:1883.
    pub listeners: Vec<ListenerConfig>,
    /// MQTT protocol options.
    pub mqtt: MqttConfig,
    /// Server-wide limits.
    pub limits: LimitsConfig,
    /// Logging.
    pub log: LogConfig,
    /// Authorization policy.
    pub security: SecurityConfig,
    /// Built-in authentication and authorization (docs/auth.md).
    pub auth: crate::builtin_auth::AuthConfig,
    /// Persistence: backend, data directory, durability (docs/persistence.md).
    pub store: StoreConfig,
    /// Cluster mode over Redis (docs/cluster.md).
    pub cluster: ClusterConfig,
    /// The `$SYS` topics (docs/management.md).
    pub sys: SysConfig,
    /// The management listener: REST API, metrics, dashboard (docs/management.md).
    pub http: HttpConfig,
}

/// Shared subscription strategy names as they appear in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SharedStrategyConfig {
    /// Pick a random member.
    Random,
    /// Cycle through members.
    #[default]
    RoundRobin,
    /// Keep the same member while it stays subscribed.
    Sticky,
    /// Hash the publisher's client id.
    HashClientid,
    /// Hash the topic.
    HashTopic,
    /// Cluster mode: the publisher's node when it has members of the group,
    /// else `shared_subscription_local_fallback` among the nodes (and on
    /// one node, that fallback among the members).
    Local,
}

impl SharedStrategyConfig {
    /// The router's strategy; `local` is `fallback` there (the choice of
    /// the node is the cluster's).
    pub(crate) fn router_strategy(self, fallback: Self) -> roost_router::SharedStrategy {
        use roost_router::SharedStrategy as S;
        match self {
            Self::Random => S::Random,
            Self::RoundRobin => S::RoundRobin,
            Self::Sticky => S::Sticky,
            Self::HashClientid => S::HashClientId,
            Self::HashTopic => S::HashTopic,
            Self::Local if fallback == Self::Local => S::RoundRobin,
            Self::Local => fallback.router_strategy(Self::RoundRobin),
        }
    }
}

/// What to do when a session's message queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum QueuePolicyConfig {
    /// Drop the oldest queued message.
    DropOldest,
    /// Drop the new message.
    #[default]
    DropNewest,
}

/// MQTT protocol options advertised in CONNACK and enforced.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// Receive Maximum we advertise: unacknowledged QoS 1/2 PUBLISH a client may send.
    pub receive_maximum: u16,
    /// Highest QoS we accept (0, 1 or 2).
    pub maximum_qos: u8,
    /// Whether retained messages are supported.
    pub retain_available: bool,
    /// Largest packet we accept, in bytes.
    pub max_packet_size: u32,
    /// Topic aliases a client may use towards us.
    pub topic_alias_maximum: u16,
    /// Assign topic aliases on messages we send when the client allows it.
    pub outbound_topic_aliases: bool,
    /// Wildcard subscriptions allowed.
    pub wildcard_subscription_available: bool,
    /// Subscription identifiers allowed.
    pub subscription_identifiers_available: bool,
    /// Shared subscriptions allowed.
    pub shared_subscription_available: bool,
    /// Shared subscription member selection.
    pub shared_subscription_strategy: SharedStrategyConfig,
    /// What `local` falls back to when the publisher's node has no member
    /// of a group (any strategy but `local`).
    pub shared_subscription_local_fallback: SharedStrategyConfig,
    /// Cap on the client's keep-alive, in seconds (0 = no cap).
    pub max_keep_alive: u16,
    /// Cap on Session Expiry Interval, in seconds.
    pub max_session_expiry_interval: u32,
    /// Seconds a socket may stay open without sending CONNECT.
    pub connect_timeout_secs: u64,
    /// Outbound unacknowledged QoS 1/2 messages per client.
    pub max_inflight: u16,
    /// Messages queued per session beyond the inflight window (and while offline).
    pub max_queued_messages: usize,
    /// Policy when that queue is full.
    pub queue_full_policy: QueuePolicyConfig,
    /// Queue QoS 0 messages for offline persistent sessions.
    pub queue_qos0_offline: bool,
    /// Deepest topic accepted (levels).
    pub max_topic_levels: usize,
    /// Subscriptions per client.
    pub max_subscriptions: usize,
    /// Longest client identifier accepted.
    pub max_client_id_len: usize,
    /// Response Information prefix returned when a client requests it; empty = none.
    pub response_information: String,
    /// Check that payloads flagged as UTF-8 (Payload Format Indicator 1) are valid UTF-8.
    pub validate_utf8_payload: bool,
    /// Retained messages kept at most (0 = unlimited).
    pub max_retained_messages: usize,
    /// Largest retained payload in bytes (0 = unlimited).
    pub max_retained_payload: usize,
    /// Seconds a retained message is kept after it was stored (0 = until
    /// replaced, deleted or its Message Expiry runs out).
    pub retain_ttl: u64,
    /// Deliveries waiting in one connection's outbox before new QoS 0 are dropped.
    pub max_outbox: usize,
    /// Server redirection (MQTT 5.0 §4.11): send every 5.0 client elsewhere.
    pub redirect: RedirectConfig,
    /// Answer a 5.0 QoS 1/2 PUBLISH that reached no subscriber with PUBACK /
    /// PUBREC 0x10 No matching subscribers (as Mosquitto does; a success
    /// code). `false`: 0x00, in the 2-byte form every other ack uses.
    pub no_matching_subscribers: bool,
}

/// Server redirection: CONNACK refuses 5.0 clients with 0x9C Use another
/// server or 0x9D Server moved and a Server Reference naming where to go.
/// 3.x clients cannot be redirected and are served normally.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedirectConfig {
    /// `"none"` (default), `"use_another_server"` (temporary) or `"server_moved"` (permanent).
    pub mode: RedirectMode,
    /// The Server Reference sent, e.g. `"mqtt2.example.com:1883"`.
    pub server_reference: String,
}

/// How clients are redirected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedirectMode {
    /// Serve clients here.
    #[default]
    None,
    /// 0x9C: temporarily use another server.
    UseAnotherServer,
    /// 0x9D: the server moved for good.
    ServerMoved,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            receive_maximum: 1024,
            no_matching_subscribers: true,
            maximum_qos: 2,
            retain_available: true,
            max_packet_size: 1024 * 1024,
            topic_alias_maximum: 64,
            outbound_topic_aliases: true,
            wildcard_subscription_available: true,
            subscription_identifiers_available: true,
            shared_subscription_available: true,
            shared_subscription_strategy: SharedStrategyConfig::RoundRobin,
            shared_subscription_local_fallback: SharedStrategyConfig::RoundRobin,
            max_keep_alive: 0,
            max_session_expiry_interval: u32::MAX,
            connect_timeout_secs: 10,
            max_inflight: 1024,
            max_queued_messages: 10_000,
            queue_full_policy: QueuePolicyConfig::DropNewest,
            queue_qos0_offline: false,
            max_topic_levels: 128,
            max_subscriptions: 10_000,
            max_client_id_len: 65_535,
            response_information: String::new(),
            validate_utf8_payload: false,
            max_retained_messages: 1_000_000,
            max_retained_payload: 0,
            retain_ttl: 0,
            max_outbox: 100_000,
            redirect: RedirectConfig::default(),
        }
    }
}

/// Server-wide limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Total simultaneous connections (0 = unlimited).
    pub max_connections: usize,
    /// A plain-TCP connection without traffic for this long hibernates: it
    /// gives up its task and keeps only its session (~1 KB less memory per
    /// idle client); its next packet, delivery or deadline wakes it. 0 = never.
    pub hibernate_after_ms: u64,
    /// Back-pressure (docs/performance.md, "Overload"): a publisher whose
    /// message leaves a subscriber's outbox with this many deliveries stops
    /// reading its socket until that subscriber's connection takes them
    /// (TCP then slows the publisher down), instead of routing messages the
    /// outbox would have to drop. 0 = never pause publishers (drop beyond
    /// `max_outbox` at once).
    pub outbox_high_water: usize,
    /// How long one subscriber may hold a publisher back, in milliseconds.
    /// A subscriber whose outbox stays at its high-water mark that long is
    /// slow: publishers stop waiting for it (its deliveries beyond
    /// `max_outbox` are dropped and counted) until it catches up, so a slow
    /// subscriber cannot slow publishers that also feed fast ones for
    /// longer than this. 0 = never pause publishers.
    pub publisher_wait_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_connections: 0,
            hibernate_after_ms: 1_000,
            outbox_high_water: 1_024,
            publisher_wait_ms: 100,
        }
    }
}

impl LimitsConfig {
    /// The outbox length that pauses publishers (0 = back-pressure off).
    pub(crate) fn pause_at(&self) -> usize {
        if self.publisher_wait_ms == 0 {
            0
        } else {
            self.outbox_high_water
        }
    }
}

/// What happens when no authorizer decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AclDefault {
    /// Allow the action.
    #[default]
    Allow,
    /// Deny the action.
    Deny,
}

/// How a denied PUBLISH is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DeniedPublish {
    /// MQTT 5.0: PUBACK/PUBREC 0x87 Not authorized; 3.x (no reason codes):
    /// acknowledged and dropped, like Mosquitto. QoS 0 is dropped silently.
    #[default]
    Acknowledge,
    /// Close the connection (DISCONNECT 0x87 in 5.0).
    Disconnect,
}

/// How a denied SUBSCRIBE filter is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DeniedSubscribe {
    /// SUBACK 0x87 Not authorized for that filter (5.0), 0x80 Failure (3.x);
    /// the other filters are granted.
    #[default]
    NotAuthorized,
    /// SUBACK 0x80 Unspecified error / Failure for that filter in every
    /// version: the client does not learn that an ACL refused it.
    Unspecified,
    /// Close the connection (DISCONNECT 0x87 in 5.0).
    Disconnect,
}

/// How a SUBSCRIBE to a wildcard filter that reaches a denied topic is
/// authorized (docs/auth.md, "Wildcard subscriptions").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AclWildcards {
    /// Mosquitto's semantics: a filter is refused only when a deny rule
    /// covers all of it; every message a subscription not allowed as a whole
    /// would bring is checked at delivery, and withheld when denied.
    #[default]
    PerMessage,
    /// A filter is refused when a deny rule overlaps it (`#` is refused
    /// under any deny); nothing is checked at delivery.
    WholeFilter,
}

/// Authorization options.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// Decision when no authorizer allows or denies (no ACL configured = allow).
    pub acl_default: AclDefault,
    /// Answer to a denied PUBLISH.
    pub denied_publish: DeniedPublish,
    /// Answer to a denied SUBSCRIBE filter.
    pub denied_subscribe: DeniedSubscribe,
    /// Wildcard subscriptions that overlap a deny rule: checked per message
    /// (default) or refused as a whole.
    pub acl_wildcards: AclWildcards,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable text.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `tracing` filter, e.g. `info` or `roost_broker=debug`. `RUST_LOG` wins.
    pub level: String,
    /// Output format.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// A configuration error that names the key and, when known, the line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// File path.
        path: String,
        /// I/O error.
        source: std::io::Error,
    },
    /// The TOML is invalid or a key has a wrong type / is unknown.
    #[error("invalid config {origin}: {message}")]
    Invalid {
        /// File path or "environment".
        origin: String,
        /// toml's message: includes the line, column and key path.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid config value `{key}`: {message}")]
    Value {
        /// Dotted key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Loads the configuration: the TOML file if given (errors name the key and
    /// line), then `ROOST_<SECTION>__<KEY>=value` environment overrides such as
    /// `ROOST_MQTT__MAX_INFLIGHT=100` (values parsed as TOML, else as strings).
    pub fn load(
        path: Option<&Path>,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let (text, origin) = match path {
            Some(path) => (
                std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })?,
                path.display().to_string(),
            ),
            None => (String::new(), "defaults".to_string()),
        };
        // Parse the file on its own first so its errors carry line numbers.
        let config = Self::from_toml(&text, &origin)?;
        let overrides: Vec<(Vec<String>, String)> = env
            .filter_map(|(name, value)| {
                let path = name.strip_prefix("ROOST_")?;
                let keys: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
                (keys.len() == 2).then_some((keys, value))
            })
            .collect();
        if overrides.is_empty() {
            return Ok(config);
        }
        let mut table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            origin: origin.clone(),
            message: e.to_string(),
        })?;
        for (keys, value) in overrides {
            let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or(toml::Value::String(value));
            let section = table
                .entry(keys[0].clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match section {
                toml::Value::Table(t) => {
                    t.insert(keys[1].clone(), parsed);
                }
                _ => {
                    return Err(ConfigError::Value {
                        key: keys.join("."),
                        message: "environment override of a non-table section".into(),
                    });
                }
            }
        }
        let config = Config::deserialize(table).map_err(|e| ConfigError::Invalid {
            origin: "environment (ROOST_* variables)".into(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Parses TOML text; `origin` names the source in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            origin: origin.to_string(),
            message: format!("{e}{}", hint(text, &e)),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that the types alone do not constrain; run again after
    /// command-line flags changed the configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, message: &str| {
            Err(ConfigError::Value {
                key: key.to_string(),
                message: message.to_string(),
            })
        };
        if self.mqtt.receive_maximum == 0 {
            return bad("mqtt.receive_maximum", "must be at least 1");
        }
        if self.mqtt.maximum_qos > 2 {
            return bad("mqtt.maximum_qos", "must be 0, 1 or 2");
        }
        if self.mqtt.max_packet_size < 64 {
            return bad("mqtt.max_packet_size", "must be at least 64 bytes");
        }
        if self.mqtt.max_inflight == 0 {
            return bad("mqtt.max_inflight", "must be at least 1");
        }
        if self.mqtt.shared_subscription_local_fallback == SharedStrategyConfig::Local {
            return bad(
                "mqtt.shared_subscription_local_fallback",
                "must be random, round_robin, sticky, hash_clientid or hash_topic",
            );
        }
        if self.mqtt.redirect.mode != RedirectMode::None
            && self.mqtt.redirect.server_reference.is_empty()
        {
            return bad(
                "mqtt.redirect.server_reference",
                "required when mqtt.redirect.mode is set",
            );
        }
        if self.mqtt.connect_timeout_secs == 0 {
            return bad("mqtt.connect_timeout_secs", "must be at least 1");
        }
        if let Err((key, message)) = self.store.validate() {
            return bad(key, message);
        }
        if let Err((key, message)) = self.cluster.validate() {
            return bad(key, &message);
        }
        if let Err((key, message)) = self.sys.validate() {
            return bad(key, &message);
        }
        if let Err((key, message)) = self.http.validate() {
            return bad(key, &message);
        }
        if self.store.backend == Some(StoreBackend::Redis) && !self.store.redis.url.contains("://")
        {
            return Err(ConfigError::Value {
                key: "store.redis.url".into(),
                message: format!(
                    "`{}` has no scheme: write redis://{0} (rediss:// for TLS, \
                     redis+unix:///path for a socket)",
                    self.store.redis.url
                ),
            });
        }
        Ok(())
    }

    /// Listeners to open: the configured ones, or the loopback default.
    pub fn effective_listeners(&self) -> Vec<ListenerConfig> {
        if self.listeners.is_empty() {
            vec![ListenerConfig::loopback(1883)]
        } else {
            self.listeners.clone()
        }
    }

    /// The session settings derived from `[mqtt]`.
    pub fn session_config(&self) -> SessionConfig {
        let m = &self.mqtt;
        SessionConfig {
            receive_maximum: m.receive_maximum,
            maximum_qos: QoS::from_u8(m.maximum_qos).unwrap_or(QoS::ExactlyOnce),
            retain_available: m.retain_available,
            maximum_packet_size: m.max_packet_size,
            topic_alias_maximum: m.topic_alias_maximum,
            outbound_topic_aliases: m.outbound_topic_aliases,
            wildcard_subscription_available: m.wildcard_subscription_available,
            subscription_identifiers_available: m.subscription_identifiers_available,
            shared_subscription_available: m.shared_subscription_available,
            server_keep_alive: (m.max_keep_alive > 0).then_some(m.max_keep_alive),
            max_session_expiry_interval: m.max_session_expiry_interval,
            max_inflight: m.max_inflight,
            max_queued_messages: m.max_queued_messages,
            queue_full_policy: match m.queue_full_policy {
                QueuePolicyConfig::DropOldest => QueueFullPolicy::DropOldest,
                QueuePolicyConfig::DropNewest => QueueFullPolicy::DropNewest,
            },
            queue_qos0_offline: m.queue_qos0_offline,
            max_topic_levels: m.max_topic_levels,
            max_subscriptions: m.max_subscriptions,
            max_client_id_len: m.max_client_id_len,
            response_information: (!m.response_information.is_empty())
                .then(|| m.response_information.clone()),
            validate_utf8_payload: m.validate_utf8_payload,
            ..SessionConfig::default()
        }
    }

    /// How long a socket may stay silent before CONNECT.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.mqtt.connect_timeout_secs)
    }
}

/// Mosquitto's directives: a file whose first directive is one of these was
/// written for Mosquitto, not Roost.
const MOSQUITTO_DIRECTIVES: &[&str] = &[
    "listener",
    "port",
    "bind_address",
    "allow_anonymous",
    "password_file",
    "acl_file",
    "persistence",
    "persistence_location",
    "persistence_file",
    "log_dest",
    "log_type",
    "cafile",
    "certfile",
    "keyfile",
    "require_certificate",
    "max_connections",
    "per_listener_settings",
    "protocol",
    "include_dir",
    "pid_file",
    "user",
    "socket_domain",
    "max_inflight_messages",
    "max_queued_messages",
    "message_size_limit",
    "autosave_interval",
    "connection",
    "address",
];

/// A second line for a TOML error that has a likely cause: a mosquitto.conf
/// given to `-c`, or an unquoted string value (`bind = 127.0.0.1:1883`).
fn hint(text: &str, error: &toml::de::Error) -> String {
    let mosquitto = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .take(20)
        .any(|line| {
            let mut words = line.split_whitespace();
            let first = words.next().unwrap_or("");
            let second = words.next().unwrap_or("");
            MOSQUITTO_DIRECTIVES.contains(&first) && !second.is_empty() && second != "="
        });
    if mosquitto {
        return "\n  this looks like a mosquitto.conf: Roost reads TOML; \
                docs/coming-from-mosquitto.md maps each directive to its Roost setting"
            .into();
    }
    if let Some(suggestion) = did_you_mean(error.message()) {
        return suggestion;
    }
    let Some(span) = error.span() else {
        return String::new();
    };
    let line_start = text[..span.start.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    if let Some((key, value)) = line.split_once('=') {
        let value = value.trim();
        let quoted = value.starts_with(['"', '\'', '[', '{']);
        let literal =
            value.parse::<f64>().is_ok() || matches!(value, "true" | "false") || value.is_empty();
        if !quoted && !literal {
            return format!(
                "\n  strings are quoted in TOML: {} = \"{value}\"",
                key.trim()
            );
        }
    }
    String::new()
}

/// For serde's "unknown field `max_inflght`, expected one of `a`, `b`":
/// the known field closest to the typo, when it is a near miss.
fn did_you_mean(message: &str) -> Option<String> {
    let rest = message.split("unknown field `").nth(1)?;
    let (typo, rest) = rest.split_once('`')?;
    let known = rest.split('`').skip(1).step_by(2);
    let (distance, best) = known
        .map(|field| (edit_distance(typo, field), field))
        .min_by_key(|(distance, _)| *distance)?;
    (distance <= 2 && distance < typo.len()).then(|| format!("\n  did you mean `{best}`?"))
}

/// Levenshtein distance, for short key names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(current + 1);
            previous = current;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod hint_tests {
    use super::*;

    #[test]
    fn a_misspelt_key_gets_the_closest_known_one() {
        let message =
            "unknown field `max_inflght`, expected one of `receive_maximum`, `max_inflight`";
        assert_eq!(
            did_you_mean(message).as_deref(),
            Some("\n  did you mean `max_inflight`?")
        );
        assert_eq!(
            did_you_mean("unknown field `zzz`, expected `max_inflight`"),
            None
        );
    }
}
