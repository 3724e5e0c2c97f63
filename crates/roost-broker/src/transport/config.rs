//! Listener configuration: `[[listeners]]` tables. Each listener names its
//! transport (`kind`), where it binds, its own admission limits and the
//! options of its transport (`tls`, `websocket`, `quic` sub-tables).
//!
//! Checked once, when the file is read: a `tls` listener without
//! certificates, a `websocket` table on a TCP listener or a PROXY header on
//! QUIC are configuration errors that name the listener, never surprises at
//! run time. Whether the certificate files exist and parse is checked when
//! the broker binds.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub use roost_hooks::ListenerKind;

/// Where a listener binds: an IP address and port, or a socket path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP or UDP address.
    Inet(SocketAddr),
    /// A Unix domain socket path.
    Unix(PathBuf),
}

impl ListenAddr {
    /// Changes the port (no effect on a Unix socket path).
    pub fn set_port(&mut self, port: u16) {
        if let Self::Inet(addr) = self {
            addr.set_port(port);
        }
    }

    /// The socket address, for network listeners.
    pub fn inet(&self) -> Option<SocketAddr> {
        match self {
            Self::Inet(addr) => Some(*addr),
            Self::Unix(_) => None,
        }
    }

    /// Loopback addresses and Unix sockets are reachable from this host only.
    pub fn is_local(&self) -> bool {
        match self {
            Self::Inet(addr) => addr.ip().is_loopback(),
            Self::Unix(_) => true,
        }
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inet(addr) => addr.fmt(f),
            Self::Unix(path) => path.display().fmt(f),
        }
    }
}

/// One listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawListener")]
pub struct ListenerConfig {
    /// Transport kind.
    pub kind: ListenerKind,
    /// Address to bind (`127.0.0.1:<default port of the kind>` when omitted),
    /// or the socket path of a `unix` listener.
    pub bind: ListenAddr,
    /// Maximum simultaneous connections on this listener (0 = unlimited).
    pub max_connections: usize,
    /// New connections accepted per second, on average (0 = unlimited).
    pub max_connection_rate: u32,
    /// New connections accepted in a burst above that rate (default: the rate).
    pub connection_burst: u32,
    /// Allow clients without credentials. Defaults to true only on loopback
    /// addresses and Unix sockets, like Mosquitto 2.
    pub allow_anonymous: Option<bool>,
    /// Seconds for the transport handshake (PROXY header, TLS, WebSocket
    /// upgrade, QUIC stream) before the connection is dropped.
    pub handshake_timeout_secs: u64,
    /// Expect a PROXY protocol v1 or v2 header on every connection.
    pub proxy_protocol: bool,
    /// Hand a connection to the broker only once the client's first bytes
    /// have arrived (Linux `TCP_DEFER_ACCEPT`, at most [`DEFER_ACCEPT_SECS`]
    /// for a silent client): the broker wakes once per new connection instead
    /// of twice. TCP-based kinds only; on by default there.
    pub defer_accept: bool,
    /// Bind with `SO_REUSEPORT`: several processes (cluster nodes on one
    /// host, docs/cluster.md) serve one port, the kernel spreading new
    /// connections over them. TCP-based kinds only; off by default.
    pub reuse_port: bool,
    /// TLS settings (`tls`, `wss` and `quic` listeners).
    pub tls: Option<TlsConfig>,
    /// WebSocket settings (`ws` and `wss` listeners).
    pub websocket: WebSocketOptions,
    /// QUIC settings (`quic` listeners).
    pub quic: QuicOptions,
}

impl ListenerConfig {
    /// A plain TCP listener on loopback with every option at its default.
    pub fn loopback(port: u16) -> Self {
        Self::new(
            ListenerKind::Tcp,
            ListenAddr::Inet(SocketAddr::from((Ipv4Addr::LOCALHOST, port))),
        )
    }

    /// A listener of `kind` on `bind` with every option at its default; set
    /// `tls` before binding a TLS-based kind.
    pub fn new(kind: ListenerKind, bind: ListenAddr) -> Self {
        Self {
            kind,
            bind,
            max_connections: 0,
            max_connection_rate: 0,
            connection_burst: 0,
            allow_anonymous: None,
            handshake_timeout_secs: DEFAULT_HANDSHAKE_TIMEOUT_SECS,
            proxy_protocol: false,
            defer_accept: kind.is_tcp_based(),
            reuse_port: false,
            tls: None,
            websocket: WebSocketOptions::default(),
            quic: QuicOptions::default(),
        }
    }

    /// Whether anonymous clients are accepted on this listener.
    pub fn anonymous_allowed(&self) -> bool {
        self.allow_anonymous.unwrap_or_else(|| self.bind.is_local())
    }

    /// How long the transport handshake may take.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.handshake_timeout_secs)
    }

    /// Checks that the options fit the kind.
    pub fn validate(&self) -> Result<(), String> {
        let kind = self.kind;
        if kind.uses_tls() && self.tls.is_none() {
            return Err(format!(
                "a `{kind}` listener needs a `tls` table with `cert_file` and `key_file`"
            ));
        }
        if !kind.uses_tls() && self.tls.is_some() {
            return Err(format!(
                "`tls` does not apply to a `{kind}` listener (use kind = \"tls\", \"wss\" or \"quic\")"
            ));
        }
        if self.proxy_protocol && !kind.accepts_proxy_protocol() {
            return Err(format!(
                "`proxy_protocol` does not apply to a `{kind}` listener"
            ));
        }
        if self.defer_accept && !kind.is_tcp_based() {
            return Err(format!(
                "`defer_accept` does not apply to a `{kind}` listener"
            ));
        }
        if self.reuse_port && !kind.is_tcp_based() {
            return Err(format!(
                "`reuse_port` does not apply to a `{kind}` listener"
            ));
        }
        if self.handshake_timeout_secs == 0 {
            return Err("`handshake_timeout_secs` must be at least 1".into());
        }
        let unix_bind = matches!(self.bind, ListenAddr::Unix(_));
        if unix_bind != (kind == ListenerKind::Unix) {
            let wanted = if kind == ListenerKind::Unix {
                "a socket path"
            } else {
                "an IP address and port"
            };
            return Err(format!("a `{kind}` listener binds {wanted}"));
        }
        if !self.websocket.path.starts_with('/') {
            return Err("`websocket.path` must start with `/`".into());
        }
        if self.websocket.subprotocols.is_empty() {
            return Err("`websocket.subprotocols` must name at least one subprotocol".into());
        }
        if self.websocket.max_frame_size < 1024 {
            return Err("`websocket.max_frame_size` must be at least 1024 bytes".into());
        }
        if self.websocket.read_buffer_size < 1024 {
            return Err("`websocket.read_buffer_size` must be at least 1024 bytes".into());
        }
        for proxy in &self.websocket.trusted_proxies {
            crate::transport::trusted::IpNet::parse(proxy).ok_or_else(|| {
                format!("`websocket.trusted_proxies`: `{proxy}` is not an IP address or CIDR block")
            })?;
        }
        if let Some(tls) = &self.tls {
            tls.validate(kind)?;
        }
        Ok(())
    }
}

/// How long the kernel holds a connection whose client has sent nothing
/// before handing it over anyway (`defer_accept`). One second, as nginx's
/// `deferred`: every MQTT client speaks first, and a silent one then meets
/// the broker's own handshake and CONNECT timeouts.
pub const DEFER_ACCEPT_SECS: u32 = 1;

/// Default for `handshake_timeout_secs`.
const DEFAULT_HANDSHAKE_TIMEOUT_SECS: u64 = 10;

/// The listener table as written, before defaults that depend on `kind`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListener {
    #[serde(default = "default_kind")]
    kind: ListenerKind,
    bind: Option<String>,
    #[serde(default)]
    max_connections: usize,
    #[serde(default)]
    max_connection_rate: u32,
    #[serde(default)]
    connection_burst: u32,
    #[serde(default)]
    allow_anonymous: Option<bool>,
    #[serde(default = "default_handshake_timeout")]
    handshake_timeout_secs: u64,
    #[serde(default)]
    proxy_protocol: bool,
    #[serde(default)]
    defer_accept: Option<bool>,
    #[serde(default)]
    reuse_port: bool,
    #[serde(default)]
    tls: Option<TlsConfig>,
    websocket: Option<WebSocketOptions>,
    quic: Option<QuicOptions>,
}

fn default_kind() -> ListenerKind {
    ListenerKind::Tcp
}

fn default_handshake_timeout() -> u64 {
    DEFAULT_HANDSHAKE_TIMEOUT_SECS
}

impl TryFrom<RawListener> for ListenerConfig {
    type Error = String;

    fn try_from(raw: RawListener) -> Result<Self, String> {
        let kind = raw.kind;
        if raw.websocket.is_some() && !kind.uses_websocket() {
            return Err(format!("`websocket` does not apply to a `{kind}` listener"));
        }
        if raw.quic.is_some() && kind != ListenerKind::Quic {
            return Err(format!("`quic` does not apply to a `{kind}` listener"));
        }
        let bind = parse_bind(kind, raw.bind.as_deref())?;
        let config = Self {
            kind,
            bind,
            max_connections: raw.max_connections,
            max_connection_rate: raw.max_connection_rate,
            connection_burst: raw.connection_burst,
            allow_anonymous: raw.allow_anonymous,
            handshake_timeout_secs: raw.handshake_timeout_secs,
            proxy_protocol: raw.proxy_protocol,
            defer_accept: raw.defer_accept.unwrap_or(kind.is_tcp_based()),
            reuse_port: raw.reuse_port,
            tls: raw.tls,
            websocket: raw.websocket.unwrap_or_default(),
            quic: raw.quic.unwrap_or_default(),
        };
        config.validate()?;
        Ok(config)
    }
}

/// `bind` as written: `IP:PORT`, a bare IP (default port of the kind), or a
/// path for `unix`. Omitted: loopback on the default port.
fn parse_bind(kind: ListenerKind, bind: Option<&str>) -> Result<ListenAddr, String> {
    if kind == ListenerKind::Unix {
        return match bind {
            Some(path) if !path.is_empty() => Ok(ListenAddr::Unix(PathBuf::from(
                path.strip_prefix("unix://").unwrap_or(path),
            ))),
            _ => Err("a `unix` listener needs `bind = \"/path/to/socket\"`".into()),
        };
    }
    let Some(text) = bind else {
        return Ok(ListenAddr::Inet(SocketAddr::from((
            Ipv4Addr::LOCALHOST,
            kind.default_port(),
        ))));
    };
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(ListenAddr::Inet(addr));
    }
    let bare = text.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(ListenAddr::Inet(SocketAddr::new(ip, kind.default_port())));
    }
    resolve(text, kind.default_port())
}

/// A host name, with or without a port (`localhost:1883`, `broker.lan`),
/// resolved once when the file is read, as Mosquitto's `listener PORT HOST`
/// does: the first address the resolver gives.
fn resolve(text: &str, default_port: u16) -> Result<ListenAddr, String> {
    use std::net::ToSocketAddrs;
    let bad = |why: String| {
        format!(
            "`bind = \"{text}\"`: {why} (write an address like \"0.0.0.0:{default_port}\" or a host name like \"localhost:{default_port}\")"
        )
    };
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (
            host,
            port.parse::<u16>()
                .map_err(|_| bad(format!("`{port}` is not a port number")))?,
        ),
        _ => (text, default_port),
    };
    let valid_name = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !valid_name {
        return Err(bad("not an IP address or host name".into()));
    }
    let mut addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| bad(format!("cannot resolve `{host}`: {e}")))?;
    addrs
        .next()
        .map(ListenAddr::Inet)
        .ok_or_else(|| bad(format!("`{host}` resolves to no address")))
}

/// Which part of a client certificate's subject names the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IdentitySource {
    /// The subject's Common Name (`CN`).
    #[default]
    Cn,
    /// The full subject distinguished name, RFC 4514 (`CN=dev1,O=Acme,C=DE`).
    Dn,
}

/// Lowest TLS version accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3.
    #[default]
    #[serde(rename = "1.2")]
    Tls12,
    /// TLS 1.3 only.
    #[serde(rename = "1.3")]
    Tls13,
}

/// TLS settings of a `tls`, `wss` or `quic` listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first (RSA, ECDSA or Ed25519).
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// More certificates on the same listener, chosen by the server name the
    /// client sends (SNI); the one above is the default.
    #[serde(default)]
    pub sni: Vec<SniCertificate>,
    /// PEM bundle of the CAs that sign client certificates; enables client
    /// certificates (optional unless `verify_peer`).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Require a valid client certificate (mutual TLS); needs `ca_file`.
    #[serde(default)]
    pub verify_peer: bool,
    /// PEM certificate revocation lists checked against client certificates.
    #[serde(default)]
    pub crl_file: Option<PathBuf>,
    /// Lowest protocol version: `"1.2"` or `"1.3"` (QUIC is always 1.3).
    #[serde(default)]
    pub min_version: TlsVersion,
    /// Cipher suites allowed, by IANA name (`TLS13_AES_256_GCM_SHA384`,
    /// `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`, ...); empty = ring's defaults.
    #[serde(default)]
    pub cipher_suites: Vec<String>,
    /// ALPN protocols offered, in preference order; empty = no ALPN (QUIC
    /// always uses `mqtt` when empty).
    #[serde(default)]
    pub alpn: Vec<String>,
    /// Replace the CONNECT user name by the client certificate's identity.
    #[serde(default)]
    pub use_identity_as_username: bool,
    /// Replace the CONNECT client identifier by the client certificate's identity.
    #[serde(default)]
    pub use_identity_as_client_id: bool,
    /// What the identity is: the subject's `cn` or the full subject `dn`.
    #[serde(default)]
    pub identity: IdentitySource,
    /// Seconds between checks of the certificate files for changes (0 = only
    /// on SIGHUP / `BrokerHandle::reload_tls`).
    #[serde(default = "default_watch_interval")]
    pub watch_interval_secs: u64,
}

fn default_watch_interval() -> u64 {
    10
}

impl TlsConfig {
    /// A server certificate and key with every other option at its default.
    pub fn new(cert_file: impl Into<PathBuf>, key_file: impl Into<PathBuf>) -> Self {
        Self {
            cert_file: cert_file.into(),
            key_file: key_file.into(),
            sni: Vec::new(),
            ca_file: None,
            verify_peer: false,
            crl_file: None,
            min_version: TlsVersion::Tls12,
            cipher_suites: Vec::new(),
            alpn: Vec::new(),
            use_identity_as_username: false,
            use_identity_as_client_id: false,
            identity: IdentitySource::Cn,
            watch_interval_secs: default_watch_interval(),
        }
    }

    /// Whether the identity of a client certificate replaces CONNECT fields.
    pub fn uses_identity(&self) -> bool {
        self.use_identity_as_username || self.use_identity_as_client_id
    }

    /// Every file this configuration reads (watched for changes).
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.cert_file.clone(), self.key_file.clone()];
        for sni in &self.sni {
            files.push(sni.cert_file.clone());
            files.push(sni.key_file.clone());
        }
        files.extend(self.ca_file.iter().cloned());
        files.extend(self.crl_file.iter().cloned());
        files
    }

    fn validate(&self, kind: ListenerKind) -> Result<(), String> {
        if self.verify_peer && self.ca_file.is_none() {
            return Err("`tls.verify_peer = true` needs `tls.ca_file` (the CAs that sign client certificates)".into());
        }
        if self.crl_file.is_some() && self.ca_file.is_none() {
            return Err("`tls.crl_file` needs `tls.ca_file`".into());
        }
        if self.uses_identity() && self.ca_file.is_none() {
            return Err("`tls.use_identity_as_*` needs client certificates: set `tls.ca_file` (and `verify_peer`)".into());
        }
        if kind == ListenerKind::Quic
            && self.min_version == TlsVersion::Tls12
            && !self.cipher_suites.is_empty()
        {
            let tls13 = self
                .cipher_suites
                .iter()
                .any(|s| s.to_ascii_uppercase().starts_with("TLS13_"));
            if !tls13 {
                return Err(
                    "`tls.cipher_suites` of a QUIC listener must include a TLS 1.3 suite".into(),
                );
            }
        }
        Ok(())
    }
}

/// An extra certificate chosen by SNI.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SniCertificate {
    /// Server names this certificate answers (`*.example.com` allowed);
    /// empty = the DNS names of the certificate itself.
    #[serde(default)]
    pub server_names: Vec<String>,
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key.
    pub key_file: PathBuf,
}

/// WebSocket settings of a `ws` or `wss` listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebSocketOptions {
    /// HTTP path of the upgrade request; other paths get 404.
    pub path: String,
    /// Subprotocols accepted, in preference order.
    pub subprotocols: Vec<String>,
    /// Refuse (400) an upgrade request that offers no subprotocol at all.
    /// Offering only unknown subprotocols is always refused.
    pub require_subprotocol: bool,
    /// `Origin` values accepted (exact match, e.g. `https://app.example.com`);
    /// empty = any origin. Requests without `Origin` (non-browser clients) pass.
    pub allowed_origins: Vec<String>,
    /// Peers (IPs or CIDR blocks) whose `X-Forwarded-For` / `X-Real-IP`
    /// headers are believed; empty = the headers are ignored.
    pub trusted_proxies: Vec<String>,
    /// Largest WebSocket frame and message accepted, in bytes.
    pub max_frame_size: usize,
    /// Bytes read from the socket at a time, allocated (and zero-filled) once
    /// per connection for its whole life: tungstenite's default of 128 KiB
    /// made an idle WebSocket client cost ~137 KB of RSS.
    pub read_buffer_size: usize,
}

impl Default for WebSocketOptions {
    fn default() -> Self {
        Self {
            path: "/mqtt".into(),
            subprotocols: vec!["mqtt".into(), "mqttv3.1".into()],
            require_subprotocol: false,
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            max_frame_size: 2 * 1024 * 1024,
            read_buffer_size: 8 * 1024,
        }
    }
}

/// QUIC settings of a `quic` listener.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct QuicOptions {
    /// Seconds of silence after which QUIC drops the connection. 0 = tied to
    /// MQTT keep-alive: 1.5 × `mqtt.max_keep_alive` (or × 65535 s when it is
    /// not capped), so only the MQTT keep-alive decides when a client is gone.
    pub idle_timeout_secs: u64,
}
