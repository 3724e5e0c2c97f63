//! Where a Redis URL points, and one blocking connection to it that every
//! command, script and pipeline of the store and of the cluster runs on:
//!
//! - one server: `redis://…`, `rediss://…` (TLS), `redis+unix:///path`;
//! - a Redis Cluster: `redis+cluster://[user][:password@]h1:p1,h2:p2,h3:p3`
//!   (`rediss+cluster://` for TLS); the seeds only need to include one live
//!   primary, the client learns the slot map and follows `MOVED`/`ASK`;
//! - a primary found through Sentinel:
//!   `redis+sentinel://[user][:password@]s1:26379,s2:26379/<master name>[/<db>]`
//!   (`rediss+sentinel://` when the primary speaks TLS); the credentials are
//!   the primary's, the sentinels are asked without any. Each new connection
//!   asks the sentinels for the current primary.
//!
//! On a Redis Cluster a `MULTI`/`EXEC` must stay in one slot (callers keep
//! one hash tag per transaction and per script); a plain pipeline may span
//! slots: [`Conn`] sends it as one sub-pipeline per slot (one round trip
//! each) and puts the answers back in order.

use std::ops::Range;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConnection};
use redis::cluster_routing::{Route, SlotAddr};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    Client, Cmd, Connection, ConnectionAddr, ConnectionLike, ErrorKind, RedisError, RedisResult,
    TlsCertificates, Value,
};

/// A parsed Redis URL: how to open connections.
pub enum Target {
    /// One server.
    Single(Client),
    /// A Redis Cluster, from its seeds.
    Cluster(ClusterClient),
    /// The primary named by Sentinel (asked again at every connect).
    Sentinel {
        /// `SentinelClient::get_client` needs `&mut`.
        client: Mutex<SentinelClient>,
        /// The master name, for messages.
        master: String,
    },
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection info holds the password: show only where it goes.
        match self {
            Target::Single(c) => write!(f, "redis {}", c.get_connection_info().addr()),
            Target::Cluster(_) => f.write_str("redis cluster"),
            Target::Sentinel { master, .. } => write!(f, "redis sentinel master {master}"),
        }
    }
}

/// One seed or sentinel address of a multi-host URL.
struct HostPort {
    host: String,
    port: u16,
}

/// The parts of `scheme://[userinfo@]h1:p1,h2:p2[/path]`.
struct MultiHost {
    tls: bool,
    userinfo: Option<String>,
    hosts: Vec<HostPort>,
    path: String,
}

fn invalid(message: String) -> RedisError {
    RedisError::from((ErrorKind::InvalidClientConfig, "bad redis URL", message))
}

fn parse_multi(rest: &str, tls: bool, default_port: u16) -> RedisResult<MultiHost> {
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i + 1..].to_string()),
        None => (rest, String::new()),
    };
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(i) => (Some(authority[..i].to_string()), &authority[i + 1..]),
        None => (None, authority),
    };
    let mut parsed = Vec::new();
    for h in hosts.split(',').map(str::trim).filter(|h| !h.is_empty()) {
        let (host, port) = match h.rsplit_once(':') {
            // `[::1]:7000`, `h:7000`; a bare IPv6 address needs brackets.
            Some((host, port)) if !host.is_empty() && !port.contains(']') => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| invalid(format!("`{h}`: the port is not a number")))?;
                (host, port)
            }
            _ => (h, default_port),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        parsed.push(HostPort {
            host: host.to_string(),
            port,
        });
    }
    if parsed.is_empty() {
        return Err(invalid("no host:port given".into()));
    }
    Ok(MultiHost {
        tls,
        userinfo,
        hosts: parsed,
        path,
    })
}

/// `user:password` or `:password` or `user` as (username, password),
/// percent-decoded as a single-server URL would be.
fn credentials(userinfo: &str) -> (Option<String>, Option<String>) {
    let decode = |s: &str| percent_decode(s).filter(|s| !s.is_empty());
    match userinfo.split_once(':') {
        Some((user, pass)) => (decode(user), decode(pass)),
        None => (decode(userinfo), None),
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(s.get(i + 1..i + 3).unwrap_or("zz"), 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl Target {
    /// Parses `url` (see the module comment). `ca_cert_pem` is a private
    /// CA for the TLS schemes; `timeout` bounds connecting and each answer.
    pub fn parse(url: &str, ca_cert_pem: Option<&[u8]>, timeout: Duration) -> RedisResult<Target> {
        let certs = || TlsCertificates {
            client_tls: None,
            root_cert: ca_cert_pem.map(<[u8]>::to_vec),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid(format!("`{url}` has no scheme")))?;
        match scheme {
            "redis+cluster" | "rediss+cluster" => {
                let tls = scheme.starts_with("rediss");
                let m = parse_multi(rest, tls, 6379)?;
                if !m.path.is_empty() && m.path != "0" {
                    return Err(invalid(
                        "a Redis Cluster has database 0 only: drop the path".into(),
                    ));
                }
                let base = if m.tls { "rediss" } else { "redis" };
                let auth = m
                    .userinfo
                    .as_ref()
                    .map(|u| format!("{u}@"))
                    .unwrap_or_default();
                let seeds: Vec<String> = m
                    .hosts
                    .iter()
                    .map(|h| format!("{base}://{auth}{}:{}", bracket(&h.host), h.port))
                    .collect();
                let mut builder = ClusterClientBuilder::new(seeds)
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    // MOVED/ASK and a failover's CLUSTERDOWN are retried a
                    // few times, briefly: the callers (store writer, lease)
                    // have their own retry and must see an outage quickly.
                    .retries(3)
                    .min_retry_wait(10)
                    .max_retry_wait(200);
                if m.tls && ca_cert_pem.is_some() {
                    builder = builder.certs(certs());
                }
                Ok(Target::Cluster(builder.build()?))
            }
            "redis+sentinel" | "rediss+sentinel" => {
                let tls = scheme.starts_with("rediss");
                let m = parse_multi(rest, tls, 26379)?;
                let mut path = m.path.split('/').filter(|p| !p.is_empty());
                let master = path
                    .next()
                    .ok_or_else(|| {
                        invalid(
                            "Sentinel needs the master name: redis+sentinel://host:26379/mymaster"
                                .into(),
                        )
                    })?
                    .to_string();
                let db = match path.next() {
                    None => 0,
                    Some(db) => db
                        .parse::<i64>()
                        .map_err(|_| invalid(format!("`{db}` is not a database number")))?,
                };
                let sentinels = m
                    .hosts
                    .iter()
                    .map(|h| ConnectionAddr::Tcp(h.host.clone(), h.port));
                let mut builder =
                    SentinelClientBuilder::new(sentinels, &master, SentinelServerType::Master)?
                        .set_client_to_redis_db(db);
                if let Some(userinfo) = &m.userinfo {
                    let (user, pass) = credentials(userinfo);
                    if let Some(user) = user {
                        builder = builder.set_client_to_redis_username(user);
                    }
                    if let Some(pass) = pass {
                        builder = builder.set_client_to_redis_password(pass);
                    }
                }
                if m.tls {
                    builder = builder.set_client_to_redis_tls_mode(redis::TlsMode::Secure);
                    if ca_cert_pem.is_some() {
                        builder = builder.set_client_to_redis_certificates(certs());
                    }
                }
                Ok(Target::Sentinel {
                    client: Mutex::new(builder.build()?),
                    master,
                })
            }
            _ => {
                let client = match ca_cert_pem {
                    Some(_) if scheme == "rediss" => Client::build_with_tls(url, certs())?,
                    _ => Client::open(url)?,
                };
                Ok(Target::Single(client))
            }
        }
    }

    /// Whether keys spread over several primaries (multi-slot transactions
    /// and `SCAN` over the whole key space are not available).
    pub fn is_cluster(&self) -> bool {
        matches!(self, Target::Cluster(_))
    }

    /// Opens a connection with `timeout` for connecting, reading and
    /// writing.
    pub fn connect(&self, timeout: Duration) -> RedisResult<Conn> {
        let single = |client: &Client| -> RedisResult<Conn> {
            let conn = client.get_connection_with_timeout(timeout)?;
            conn.set_read_timeout(Some(timeout))?;
            conn.set_write_timeout(Some(timeout))?;
            Ok(Conn::Single(conn))
        };
        match self {
            Target::Single(client) => single(client),
            Target::Cluster(client) => {
                let conn = client.get_connection()?;
                conn.set_read_timeout(Some(timeout))?;
                conn.set_write_timeout(Some(timeout))?;
                Ok(Conn::Cluster(Box::new(conn)))
            }
            Target::Sentinel { client, .. } => {
                let primary = client
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_client()?;
                single(&primary)
            }
        }
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Whether the connection is no good any more: broken, timed out, or a
/// server that is a replica now (after a Sentinel failover the next
/// connection asks the sentinels for the new primary).
pub fn must_reconnect(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_timeout()
        || e.code() == Some("READONLY")
        || e.clone()
            .into_server_errors()
            .is_some_and(|errors| errors.iter().any(|(_, s)| s.code() == "READONLY"))
}

/// A connection to one server or to a Redis Cluster.
pub enum Conn {
    /// One server (also the primary Sentinel named).
    Single(Connection),
    /// A cluster connection (one socket per primary it talked to).
    Cluster(Box<ClusterConnection>),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conn::Single(_) => "Conn::Single",
            Conn::Cluster(_) => "Conn::Cluster",
        })
    }
}

impl Conn {
    /// Sets the read timeout (a blocking `XREAD` needs a longer one).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> RedisResult<()> {
        match self {
            Conn::Single(c) => c.set_read_timeout(timeout),
            Conn::Cluster(c) => c.set_read_timeout(timeout),
        }
    }

    /// Whether this is a cluster connection.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Conn::Cluster(_))
    }
}

/// `MULTI` as the first command of a packed transaction.
const MULTI: &[u8] = b"*1\r\n$5\r\nMULTI\r\n";

impl ConnectionLike for Conn {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            // A transaction goes whole to the node of its first key (Redis
            // refuses it with CROSSSLOT if its keys span slots).
            Conn::Cluster(c) if cmd.starts_with(MULTI) => c.req_packed_commands(cmd, offset, count),
            // A plain pipeline: one sub-pipeline per slot (each goes
            // through the cluster client's MOVED/ASK handling as a
            // whole), answers put back in order.
            Conn::Cluster(c) => {
                let parts = unpack(cmd)?;
                let mut groups: Vec<(Option<Route>, Vec<usize>)> = Vec::new();
                for (i, part) in parts.iter().enumerate() {
                    let route = part
                        .key
                        .clone()
                        .map(|k| Route::with_key(&cmd[k], SlotAddr::Master));
                    match groups.iter_mut().find(|(r, _)| *r == route) {
                        Some((_, members)) => members.push(i),
                        None => groups.push((route, vec![i])),
                    }
                }
                if groups.len() == 1 {
                    return c.req_packed_commands(cmd, offset, count);
                }
                let mut all = vec![Value::Nil; parts.len()];
                for (_, members) in groups {
                    let mut packed = Vec::new();
                    for &i in &members {
                        packed.extend_from_slice(&cmd[parts[i].bytes.clone()]);
                    }
                    let answers = c.req_packed_commands(&packed, 0, members.len())?;
                    for (i, answer) in members.into_iter().zip(answers) {
                        all[i] = answer;
                    }
                }
                Ok(all.into_iter().skip(offset).take(count).collect())
            }
        }
    }

    fn req_command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            Conn::Single(c) => c.req_command(cmd),
            Conn::Cluster(c) => c.req_command(cmd),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }

    fn supports_pipelining(&self) -> bool {
        true
    }

    fn check_connection(&mut self) -> bool {
        match self {
            Conn::Single(c) => c.check_connection(),
            Conn::Cluster(c) => c.check_connection(),
        }
    }

    fn is_open(&self) -> bool {
        match self {
            Conn::Single(c) => c.is_open(),
            Conn::Cluster(c) => c.is_open(),
        }
    }
}

/// One command of a packed pipeline: where its bytes are, and where its
/// key is (none for a keyless command).
struct Packed {
    bytes: Range<usize>,
    key: Option<Range<usize>>,
}

/// Splits packed commands (RESP arrays of bulk strings, as redis-rs
/// encodes every command) and finds each one's key: the first argument,
/// the first key of `EVAL`/`EVALSHA`/`FCALL`, the first stream of `XREAD`.
fn unpack(all: &[u8]) -> RedisResult<Vec<Packed>> {
    let bad = || invalid("cannot split a pipeline".into());
    let number = |at: &mut usize, tag: u8| -> RedisResult<usize> {
        if all.get(*at) != Some(&tag) {
            return Err(bad());
        }
        let end = all[*at..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(bad)?
            + *at;
        let n = std::str::from_utf8(&all[*at + 1..end])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .ok_or_else(bad)?;
        *at = end + 2;
        Ok(n)
    };
    let mut out = Vec::new();
    let mut at = 0;
    while at < all.len() {
        let start = at;
        let n = number(&mut at, b'*')?;
        let mut args: Vec<Range<usize>> = Vec::with_capacity(n);
        for _ in 0..n {
            let len = number(&mut at, b'$')?;
            if all.len() < at + len + 2 {
                return Err(bad());
            }
            args.push(at..at + len);
            at += len + 2;
        }
        let arg = |i: usize| args.get(i).map(|r| &all[r.clone()]);
        let name = arg(0).map(<[u8]>::to_ascii_uppercase).unwrap_or_default();
        let key_at = match name.as_slice() {
            b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" | b"FCALL_RO" => {
                let keys = arg(2)
                    .and_then(|n| std::str::from_utf8(n).ok())
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(0);
                (keys > 0).then_some(3)
            }
            b"XREAD" | b"XREADGROUP" => (1..args.len())
                .find(|&i| arg(i).is_some_and(|a| a.eq_ignore_ascii_case(b"STREAMS")))
                .map(|i| i + 1),
            b"PING" | b"SCRIPT" | b"FUNCTION" | b"CONFIG" | b"INFO" | b"MULTI" | b"EXEC" => None,
            _ => Some(1),
        };
        out.push(Packed {
            bytes: start..at,
            key: key_at.and_then(|i| args.get(i).cloned()),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn packed_pipeline_is_split_back_into_its_commands() {
        let mut pipe = redis::pipe();
        pipe.cmd("SET").arg("{a}x").arg("1").ignore();
        pipe.cmd("XADD")
            .arg("{b}s")
            .arg("*")
            .arg("f")
            .arg(b"\r\n\x00".as_slice());
        pipe.cmd("EVALSHA").arg("abc").arg(1).arg("{c}own").arg("n");
        pipe.cmd("EVALSHA").arg("abc").arg(0);
        pipe.cmd("XREAD")
            .arg("COUNT")
            .arg(1)
            .arg("STREAMS")
            .arg("{d}i")
            .arg("0-0");
        let packed = pipe.get_packed_pipeline();
        let parts = unpack(&packed).unwrap();
        let keys: Vec<Option<&[u8]>> = parts
            .iter()
            .map(|p| p.key.clone().map(|k| &packed[k]))
            .collect();
        assert_eq!(
            keys,
            [
                Some(b"{a}x".as_slice()),
                Some(b"{b}s".as_slice()),
                Some(b"{c}own".as_slice()),
                None,
                Some(b"{d}i".as_slice())
            ]
        );
        assert_eq!(parts[0].bytes.start, 0);
        assert_eq!(parts[4].bytes.end, packed.len());
        for pair in parts.windows(2) {
            assert_eq!(pair[0].bytes.end, pair[1].bytes.start);
        }
        assert!(unpack(b"*1\r\n$5\r\nPI").is_err());
    }

    #[test]
    fn cluster_and_sentinel_urls_are_parsed() {
        let t = Duration::from_secs(1);
        assert!(
            Target::parse("redis+cluster://127.0.0.1:7000,127.0.0.1:7001", None, t)
                .unwrap()
                .is_cluster()
        );
        assert!(
            Target::parse("redis+cluster://:pw@[::1]:7000", None, t)
                .unwrap()
                .is_cluster()
        );
        assert!(Target::parse("redis+cluster://h:x", None, t).is_err());
        assert!(Target::parse("redis+cluster://h:7000/3", None, t).is_err());
        match Target::parse("redis+sentinel://u:p%40w@s1:26379,s2/mymaster/2", None, t).unwrap() {
            Target::Sentinel { master, .. } => assert_eq!(master, "mymaster"),
            other => panic!("{other:?}"),
        }
        assert!(Target::parse("redis+sentinel://s1:26379", None, t).is_err());
        assert!(
            !Target::parse("redis://127.0.0.1:6379", None, t)
                .unwrap()
                .is_cluster()
        );
        assert_eq!(
            credentials("u:p%40w"),
            (Some("u".into()), Some("p@w".into()))
        );
        assert_eq!(credentials(":pw"), (None, Some("pw".into())));
    }
}
