//! Private Redis deployments for tests, on free loopback ports, every
//! process stopped by its PID (never by name): one redis-server
//! ([`RedisSingle`], optionally with an append-only file), a 3-primary Redis Cluster
//! (`redis-server --cluster-enabled yes` × N, then `redis-cli --cluster
//! create … --cluster-replicas 0 --cluster-yes`) and a Sentinel setup (one
//! primary, one replica, one sentinel). `redis-server`, `redis-sentinel`
//! (the same binary) and `redis-cli` come from Debian's redis-server and
//! redis-tools packages (scripts/install-test-deps.sh).
//!
//! A setup that cannot start panics with the reason: these are test
//! fixtures, and a test without its Redis has nothing to run.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::TIMEOUT;

/// `n` distinct free loopback ports (held together while chosen, so they
/// differ; another process may still take one before the server binds it:
/// a test's other servers, or any outgoing connection given it as its
/// local port, [`started`] then tries fresh ports).
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}

/// How often a server is started on fresh ports when one of its ports was
/// taken before it bound it (redis-server exits 1 then: "Address already
/// in use"; a Redis Cluster node binds a second, bus port too). Seen in CI
/// on a loaded host, where the window between choosing and binding is long.
const PORT_ATTEMPTS: usize = 5;

/// Waits until the process `child` listens on each of `ports` itself (not
/// another test's server that took one meanwhile) and answers on the first
/// (its client port); `Err` with its exit status when it exited instead (it
/// could not bind a port).
fn wait_listening(child: &mut Child, ports: &[u16], what: &str) -> Result<(), ExitStatus> {
    let deadline = Instant::now() + TIMEOUT;
    let port = ports[0];
    while TcpStream::connect(("127.0.0.1", port)).is_err()
        || !ports.iter().all(|p| crate::owns_listener(child.id(), *p))
    {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(status);
        }
        assert!(Instant::now() < deadline, "{what} not listening on {port}");
        // Nothing to wait on but the port itself.
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// [`wait_listening`] for a server restarted on its own port (nothing to
/// retry on: its clients know that port); panics when it exited.
fn wait_owned(child: &mut Child, ports: &[u16], what: &str) {
    if let Err(status) = wait_listening(child, ports, what) {
        panic!("{what} on ports {ports:?} exited at start: {status}");
    }
}

/// A server started by `spawn` on `n` fresh ports (its client port
/// first) and listening on all of them: `spawn` is called again on other ports, up
/// to [`PORT_ATTEMPTS`] times, when the server exits at start because one
/// of its ports was taken meanwhile. Returns the child and its ports.
fn started(n: usize, what: &str, mut spawn: impl FnMut(&[u16]) -> Child) -> (Child, Vec<u16>) {
    let mut attempt = 1;
    loop {
        let ports = free_ports(n);
        let mut child = spawn(&ports);
        match wait_listening(&mut child, &ports, what) {
            Ok(()) => return (child, ports),
            Err(status) if attempt < PORT_ATTEMPTS => {
                eprintln!(
                    "{what} on ports {ports:?} exited at start ({status}): a port was taken; fresh ports"
                );
                attempt += 1;
            }
            Err(status) => panic!(
                "{what} on ports {ports:?} exited at start {PORT_ATTEMPTS} times, last: {status}"
            ),
        }
    }
}

/// Sends one inline command and returns the raw reply (one read: the
/// replies asked for here are small).
fn ask(port: u16, command: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(format!("{command}\r\n").as_bytes()).ok()?;
    let mut buf = vec![0u8; 16 * 1024];
    let n = stream.read(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// `redis-cli <target> <args>`'s output; panics when it fails.
fn redis_cli(target: &[&str], args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(target)
        .args(args)
        .output()
        .expect("redis-cli (scripts/install-test-deps.sh installs it)");
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// One private redis-server on a free loopback port, its files in a
/// temporary directory. With [`RedisSingle::start_with_aof`] it keeps an
/// append-only file fsynced at every write (`appendfsync always`), so what
/// it acknowledged survives [`RedisSingle::restart`] after a kill -9; else
/// it persists nothing and restarts empty.
#[derive(Debug)]
pub struct RedisSingle {
    child: Child,
    port: u16,
    aof: bool,
    dir: tempfile::TempDir,
}

impl RedisSingle {
    /// A server without persistence.
    pub fn start() -> RedisSingle {
        Self::start_as(false)
    }

    /// A server with its append-only file fsynced at every write.
    pub fn start_with_aof() -> RedisSingle {
        Self::start_as(true)
    }

    fn start_as(aof: bool) -> RedisSingle {
        let dir = tempfile::tempdir().expect("temp dir for redis-server");
        let (child, ports) = started(1, "redis-server", |p| Self::spawn(dir.path(), p[0], aof));
        RedisSingle {
            child,
            port: ports[0],
            aof,
            dir,
        }
    }

    fn spawn(dir: &Path, port: u16, aof: bool) -> Child {
        let persistence: &[&str] = if aof {
            &["--appendonly", "yes", "--appendfsync", "always"]
        } else {
            &["--appendonly", "no"]
        };
        Command::new("redis-server")
            .args(["--save", "", "--bind", "127.0.0.1"])
            .args(persistence)
            .arg("--dir")
            .arg(dir)
            .args(["--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (scripts/install-test-deps.sh installs it)")
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Runs `redis-cli` against it and returns its output (panics when it
    /// fails: a test's own command).
    pub fn cli(&self, args: &[&str]) -> String {
        redis_cli(&["-p", &self.port.to_string()], args)
    }

    /// kill -9.
    pub fn kill(&mut self) {
        stop(&mut self.child);
    }

    /// Killed and started again on the same port and directory (with an
    /// append-only file it replays it).
    pub fn restart(&mut self) {
        self.kill();
        self.child = Self::spawn(self.dir.path(), self.port, self.aof);
        wait_owned(&mut self.child, &[self.port], "redis-server");
    }
}

impl Drop for RedisSingle {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One `redis-server --cluster-enabled yes`.
#[derive(Debug)]
struct ClusterNode {
    child: Child,
    port: u16,
    bus: u16,
}

/// A Redis Cluster of primaries only, each a private redis-server without
/// persistence; the slot assignment lives in each node's `nodes.conf` in a
/// temporary directory, so [`RedisCluster::restart`] brings the same
/// cluster back (empty).
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<ClusterNode>,
    dir: tempfile::TempDir,
}

impl RedisCluster {
    /// Starts `primaries` nodes (3 at least: `redis-cli --cluster create`
    /// refuses fewer), joins them and waits for `cluster_state:ok` on each.
    pub fn start(primaries: usize) -> RedisCluster {
        Self::start_as(primaries, 0)
    }

    /// [`RedisCluster::start`] with one replica per primary (`2 ×
    /// primaries` servers, `--cluster-replicas 1`), for failover tests
    /// ([`RedisCluster::kill_primary_of`], [`RedisCluster::wait_failover`]).
    pub fn start_with_replicas(primaries: usize) -> RedisCluster {
        Self::start_as(primaries, 1)
    }

    fn start_as(primaries: usize, replicas: usize) -> RedisCluster {
        let dir = tempfile::tempdir().expect("temp dir for the cluster");
        // Each on its own client and bus port.
        let nodes: Vec<ClusterNode> = (0..primaries * (1 + replicas))
            .map(|_| {
                let (child, p) = started(2, "redis-server (cluster)", |p| {
                    Self::spawn(dir.path(), p[0], p[1])
                });
                ClusterNode {
                    child,
                    port: p[0],
                    bus: p[1],
                }
            })
            .collect();
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        let out = create
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli (scripts/install-test-deps.sh installs redis-tools)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = RedisCluster { nodes, dir };
        cluster.wait_ok();
        if replicas > 0 {
            cluster.wait_replicas(primaries * replicas);
        }
        cluster
    }

    /// Waits until `n` replicas are in sync with their primaries (a
    /// replica still loading could not be promoted).
    fn wait_replicas(&self, n: usize) {
        let deadline = Instant::now() + TIMEOUT * 3;
        loop {
            let synced = self
                .nodes
                .iter()
                .filter(|node| {
                    ask(node.port, "INFO replication").is_some_and(|r| {
                        r.contains("role:slave") && r.contains("master_link_status:up")
                    })
                })
                .count();
            if synced >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{synced} of {n} replicas in sync"
            );
            // INFO has no blocking form.
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The port of the live primary serving `key`'s slot, as the live
    /// nodes' `CLUSTER NODES` say.
    pub fn primary_of(&self, key: &str) -> Option<u16> {
        let node = self.nodes.iter().find(|n| ask(n.port, "PING").is_some())?;
        let slot: u16 = ask(node.port, &format!("CLUSTER KEYSLOT {key}"))?
            .trim()
            .trim_start_matches(':')
            .parse()
            .ok()?;
        let table = ask(node.port, "CLUSTER NODES")?;
        table.lines().find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let flags = fields.get(2)?;
            if !flags.contains("master") || flags.contains("fail") {
                return None;
            }
            let serves = fields.iter().skip(8).any(|range| {
                let mut bounds = range.split('-').map(|b| b.parse::<u16>().ok());
                match (bounds.next().flatten(), bounds.next()) {
                    (Some(low), Some(Some(high))) => (low..=high).contains(&slot),
                    (Some(only), None) => only == slot,
                    _ => false,
                }
            });
            let port = fields.get(1)?.split('@').next()?.rsplit(':').next()?;
            serves.then(|| port.parse().ok()).flatten()
        })
    }

    /// Waits until the replicas of the primary serving `key`'s slot have
    /// everything it wrote so far (replication is asynchronous: a failover
    /// loses what they lacked).
    pub fn wait_replicated(&self, key: &str) {
        let port = self.primary_of(key).expect("a primary for the key");
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let info = ask(port, "INFO replication").unwrap_or_default();
            let field = |name: &str| -> Option<u64> {
                let at = info.find(name)? + name.len();
                let rest = &info[at..];
                let end = rest.find([',', '\r', '\n']).unwrap_or(rest.len());
                rest[..end].parse().ok()
            };
            if let (Some(written), Some(copied)) = (field("master_repl_offset:"), field("offset="))
                && copied >= written
            {
                return;
            }
            assert!(Instant::now() < deadline, "replica of {port} not in sync");
            // INFO has no blocking form.
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills (SIGKILL) the primary serving `key`'s slot; returns its port
    /// (for [`RedisCluster::wait_failover`]).
    pub fn kill_primary_of(&mut self, key: &str) -> u16 {
        let old = self.primary_of(key).expect("a primary for the key");
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.port == old)
            .expect("the primary is one of ours");
        stop(&mut node.child);
        old
    }

    /// Waits until a replica took over `key`'s slot from the primary on
    /// `old` (another primary serves it and every other node says
    /// `cluster_state:ok`). Returns the new primary's port.
    pub fn wait_failover(&self, key: &str, old: u16) -> u16 {
        let deadline = Instant::now() + TIMEOUT * 6;
        loop {
            let new = self.primary_of(key).filter(|p| *p != old);
            let ok = self.nodes.iter().filter(|n| n.port != old).all(|n| {
                ask(n.port, "CLUSTER INFO").is_some_and(|r| r.contains("cluster_state:ok"))
            });
            if let (Some(new), true) = (new, ok) {
                return new;
            }
            assert!(Instant::now() < deadline, "no failover of {old} in time");
            // The cluster bus has no event to wait on from here.
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn spawn(dir: &Path, port: u16, bus: u16) -> Child {
        Command::new("redis-server")
            .current_dir(dir)
            .args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .args(["--port", &port.to_string()])
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-port", &bus.to_string()])
            .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
            .args(["--cluster-node-timeout", "2000"])
            .args(["--maxmemory-policy", "noeviction"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (scripts/install-test-deps.sh installs it)")
    }

    /// Waits until every node says `cluster_state:ok` (all slots served).
    fn wait_ok(&self) {
        let deadline = Instant::now() + TIMEOUT * 3;
        for node in &self.nodes {
            while !ask(node.port, "CLUSTER INFO").is_some_and(|r| r.contains("cluster_state:ok")) {
                assert!(
                    Instant::now() < deadline,
                    "Redis Cluster node {} not ok",
                    node.port
                );
                // CLUSTER INFO has no blocking form.
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// `redis+cluster://` with every node as a seed.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    /// Runs `redis-cli -c` (following redirections) against its first node
    /// and returns its output (panics when it fails: a test's own command).
    pub fn cli(&self, args: &[&str]) -> String {
        redis_cli(&["-c", "-p", &self.nodes[0].port.to_string()], args)
    }

    /// The nodes' client ports.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// Kills every node (SIGKILL by PID).
    pub fn kill(&mut self) {
        for node in &mut self.nodes {
            stop(&mut node.child);
        }
    }

    /// Kills every node and starts them again on the same ports with the
    /// same `nodes.conf`: the same cluster, without data.
    pub fn restart(&mut self) {
        self.kill();
        for node in &mut self.nodes {
            node.child = Self::spawn(self.dir.path(), node.port, node.bus);
        }
        for node in &mut self.nodes {
            wait_owned(
                &mut node.child,
                &[node.port, node.bus],
                "redis-server (cluster)",
            );
        }
        self.wait_ok();
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The Redis a cluster test's nodes share: one private redis-server, or a
/// private 3-primary Redis Cluster, so one test file runs on both (a
/// second test binary includes it as a module named `on_redis_cluster`).
#[derive(Debug)]
pub enum SharedRedis {
    /// One redis-server.
    Single(RedisSingle),
    /// A 3-primary Redis Cluster.
    Cluster(RedisCluster),
}

impl SharedRedis {
    /// A Redis Cluster when `cluster`, else one redis-server.
    pub fn start(cluster: bool) -> Self {
        if cluster {
            SharedRedis::Cluster(RedisCluster::start(3))
        } else {
            SharedRedis::Single(RedisSingle::start())
        }
    }

    /// A Redis Cluster for a test module included as `on_redis_cluster`
    /// (pass `module_path!()`), else one redis-server.
    pub fn start_for(module_path: &str) -> Self {
        Self::start(module_path.ends_with("on_redis_cluster"))
    }

    /// The URL the nodes are given.
    pub fn url(&self) -> String {
        match self {
            SharedRedis::Single(s) => s.url(),
            SharedRedis::Cluster(c) => c.url(),
        }
    }

    /// `redis-cli` against it (following a cluster's redirections).
    pub fn cli(&self, args: &[&str]) -> String {
        match self {
            SharedRedis::Single(s) => s.cli(args),
            SharedRedis::Cluster(c) => c.cli(args),
        }
    }

    /// Kills the server (every primary of a cluster).
    pub fn kill(&mut self) {
        match self {
            SharedRedis::Single(s) => s.kill(),
            SharedRedis::Cluster(c) => c.kill(),
        }
    }

    /// Starts it again on the same port(s), without data (a single server
    /// with an append-only file replays it).
    pub fn restart(&mut self) {
        match self {
            SharedRedis::Single(s) => s.restart(),
            SharedRedis::Cluster(c) => c.restart(),
        }
    }
}

/// One primary, one replica of it and one sentinel watching it under the
/// master name [`RedisSentinel::MASTER`], with a short failure detection
/// (1 s) so a failover test ends in seconds.
#[derive(Debug)]
pub struct RedisSentinel {
    primary: Child,
    replica: Child,
    sentinel: Child,
    ports: [u16; 3],
    _dir: tempfile::TempDir,
}

impl RedisSentinel {
    /// The master name the sentinel monitors.
    pub const MASTER: &'static str = "roostmaster";

    /// Starts the three processes and waits until the sentinel knows the
    /// replica.
    pub fn start() -> RedisSentinel {
        let dir = tempfile::tempdir().expect("temp dir for sentinel");
        let server = |port: u16, extra: &[String]| {
            Command::new("redis-server")
                .current_dir(dir.path())
                .args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
                .args(["--port", &port.to_string()])
                .args(["--maxmemory-policy", "noeviction"])
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server (scripts/install-test-deps.sh installs it)")
        };
        let (primary, p) = started(1, "redis-server (primary)", |ports| server(ports[0], &[]));
        let p = p[0];
        let (replica, r) = started(1, "redis-server (replica)", |ports| {
            server(
                ports[0],
                &["--replicaof".into(), "127.0.0.1".into(), p.to_string()],
            )
        });
        let r = r[0];
        // The sentinel rewrites its configuration file: one of its own.
        let conf = dir.path().join("sentinel.conf");
        let (sentinel, s) = started(1, "redis-sentinel", |ports| {
            std::fs::write(
                &conf,
                format!(
                    "port {s}\nbind 127.0.0.1\nsentinel monitor {m} 127.0.0.1 {p} 1\n\
                     sentinel down-after-milliseconds {m} 1000\n\
                     sentinel failover-timeout {m} 5000\n",
                    s = ports[0],
                    m = Self::MASTER
                ),
            )
            .expect("write sentinel.conf");
            Command::new("redis-server")
                .current_dir(dir.path())
                .arg(&conf)
                .arg("--sentinel")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server --sentinel")
        });
        let s = s[0];
        let setup = RedisSentinel {
            primary,
            replica,
            sentinel,
            ports: [p, r, s],
            _dir: dir,
        };
        // The replica must be in sync and known to the sentinel before a
        // failover can promote it.
        let deadline = Instant::now() + TIMEOUT * 3;
        while !ask(r, "INFO replication").is_some_and(|i| i.contains("master_link_status:up"))
            || !ask(s, &format!("SENTINEL REPLICAS {}", Self::MASTER))
                .is_some_and(|i| i.contains(&r.to_string()))
        {
            assert!(Instant::now() < deadline, "sentinel setup not ready");
            // Replication and sentinel discovery have no blocking form.
            std::thread::sleep(Duration::from_millis(100));
        }
        setup
    }

    /// `redis+sentinel://127.0.0.1:<sentinel port>/<master name>`.
    pub fn url(&self) -> String {
        format!(
            "redis+sentinel://127.0.0.1:{}/{}",
            self.ports[2],
            Self::MASTER
        )
    }

    /// Kills the primary (SIGKILL by PID).
    pub fn kill_primary(&mut self) {
        stop(&mut self.primary);
    }

    /// Waits until the sentinel names the replica as the primary.
    pub fn wait_failover(&self) {
        let deadline = Instant::now() + TIMEOUT * 3;
        let replica = self.ports[1].to_string();
        while !ask(
            self.ports[2],
            &format!("SENTINEL GET-MASTER-ADDR-BY-NAME {}", Self::MASTER),
        )
        .is_some_and(|r| r.contains(&replica))
        {
            assert!(Instant::now() < deadline, "no failover to the replica");
            // The sentinel's failover has no blocking form to wait on.
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        stop(&mut self.sentinel);
        stop(&mut self.replica);
        stop(&mut self.primary);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Redis Cluster node whose bus port another process holds exits at
    /// start, as when a port [`free_ports`] chose is taken before the
    /// server binds it; [`started`] starts it again on fresh ports and
    /// returns it listening on them.
    #[test]
    fn a_server_whose_port_was_taken_meanwhile_starts_again_on_fresh_ports() {
        let dir = tempfile::tempdir().unwrap();
        let holder = TcpListener::bind("127.0.0.1:0").unwrap();
        let taken = holder.local_addr().unwrap().port();
        let mut attempts = 0;
        let (mut child, ports) = started(2, "redis-server (cluster)", |p| {
            attempts += 1;
            let bus = if attempts == 1 { taken } else { p[1] };
            RedisCluster::spawn(dir.path(), p[0], bus)
        });
        assert_eq!(attempts, 2, "the first start, its bus port taken, failed");
        assert!(ports.iter().all(|p| crate::owns_listener(child.id(), *p)));
        stop(&mut child);
    }
}
