//! Turns command-line arguments into the list of clients this process runs
//! (its slice when `--procs` splits the work), each with a role.

use std::ops::Range;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use bytestring::ByteString;
use roost_codec::{Encoder, QoS};

use crate::args::{BenchCommand, CommonArgs, PubArgs, PubSubArgs, SubArgs, TopicMode};
use crate::client::{ClientConfig, ClientSpec};
use crate::pacing::PacerKind;
use crate::payload::HEADER_LEN;
use crate::publisher::PublishPlan;
use crate::target::Targets;
use crate::template::PublishTemplate;
use crate::transport::Transport;

/// Files a process needs besides its client sockets (stdio, runtime, /proc reads).
const SPARE_FILES: u64 = 64;

/// Which part of the clients this process runs: `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slice {
    /// This process's number, from 0.
    pub index: u64,
    /// Number of processes.
    pub count: u64,
}

impl Slice {
    /// The whole run in one process.
    pub fn single() -> Self {
        Self { index: 0, count: 1 }
    }

    /// Parses the hidden `--child I/N` value.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let (i, n) = text
            .split_once('/')
            .with_context(|| format!("--child {text:?}: expected I/N"))?;
        let index: u64 = i.parse().context("--child: bad index")?;
        let count: u64 = n.parse().context("--child: bad count")?;
        if count == 0 || index >= count {
            bail!("--child {text:?}: index out of range");
        }
        Ok(Self { index, count })
    }

    /// The indices `0..total` that belong to this slice (contiguous, sizes differ by at most one).
    pub fn range(&self, total: u64) -> Range<u64> {
        let share = |k: u64| {
            u64::try_from(u128::from(total) * u128::from(k) / u128::from(self.count))
                .unwrap_or(total)
        };
        share(self.index)..share(self.index + 1)
    }

    /// True for a child of a `--procs` run.
    pub fn is_child(&self) -> bool {
        self.count > 1
    }
}

/// What a client does once connected.
#[derive(Debug, Clone)]
pub enum Role {
    /// Holds the connection (answers pings).
    Idle,
    /// Subscribes to `filter` in the subscribe phase, then receives.
    Subscriber {
        /// Topic filter.
        filter: String,
        /// Subscription QoS.
        qos: QoS,
    },
    /// Publishes in the run phase.
    Publisher(Box<PublishPlan>),
}

/// One client of this process.
#[derive(Debug, Clone)]
pub struct ClientPlan {
    /// Identity and addresses.
    pub spec: ClientSpec,
    /// What it does.
    pub role: Role,
}

/// Everything this process needs to run its part.
#[derive(Debug, Clone)]
pub struct RunPlan {
    /// Clients in launch order.
    pub clients: Vec<ClientPlan>,
    /// Print a progress line every second (not `--quiet`, not a `--procs` child).
    pub progress_line: bool,
    /// Connection settings.
    pub client_cfg: ClientConfig,
    /// Time between connection starts in this process, ns (0 = no pacing).
    pub connect_interval_ns: u64,
    /// Delay of this process's first connection, ns.
    pub connect_offset_ns: u64,
    /// Handshakes in flight at most.
    pub max_connecting: usize,
    /// Whether the run has a subscribe phase.
    pub subscribe_phase: bool,
    /// Pause after the subscribe phase, before publishing (`--settle-ms`).
    pub settle: Duration,
    /// Warm-up, ns.
    pub warmup_ns: u64,
    /// Measured duration, ns (0 = until the limit or Ctrl-C).
    pub duration_ns: u64,
    /// Longest wait for messages in flight after publishing stops.
    pub drain: Duration,
    /// Copies of each published message the subscribers should receive in
    /// total, when this process sees every subscriber (None otherwise).
    pub deliveries_per_message: Option<u64>,
    /// Max-rate backlog cap: (deliveries outstanding, deliveries per local message).
    pub backlog: Option<(u64, f64)>,
    /// The clock paced publishers sleep on.
    pub pacer: PacerKind,
}

impl RunPlan {
    /// Number of clients with the publisher role.
    pub fn publishers(&self) -> usize {
        self.clients
            .iter()
            .filter(|c| matches!(c.role, Role::Publisher(_)))
            .count()
    }

    /// True if some publisher follows a schedule (`--rate`, `-I`).
    pub fn has_paced_publishers(&self) -> bool {
        self.clients
            .iter()
            .any(|c| matches!(&c.role, Role::Publisher(p) if p.interval_ns > 0))
    }

    /// Number of clients with the subscriber role.
    pub fn subscribers(&self) -> usize {
        self.clients
            .iter()
            .filter(|c| matches!(c.role, Role::Subscriber { .. }))
            .count()
    }
}

/// Builds this process's plan.
pub fn build(cmd: &BenchCommand, slice: Slice) -> anyhow::Result<RunPlan> {
    let common = cmd.common();
    let targets = Targets::resolve(common)?;
    let client_cfg = client_config(common)?;
    let mut plan = RunPlan {
        clients: Vec::new(),
        client_cfg,
        connect_interval_ns: 0,
        connect_offset_ns: 0,
        max_connecting: (common.max_connecting / usize::try_from(slice.count).unwrap_or(1)).max(1),
        subscribe_phase: false,
        settle: Duration::ZERO,
        warmup_ns: 0,
        duration_ns: 0,
        drain: Duration::from_secs(10),
        deliveries_per_message: None,
        backlog: None,
        pacer: common.pacer,
        progress_line: !common.quiet && !slice.is_child(),
    };
    let base_interval = base_connect_interval_ns(common);
    plan.connect_interval_ns = base_interval.saturating_mul(slice.count);
    plan.connect_offset_ns = base_interval.saturating_mul(slice.index);

    let total = match cmd {
        BenchCommand::Conn(a) => {
            plan.duration_ns = secs_to_ns(a.duration_s);
            for i in slice.range(a.count) {
                let spec = spec(&targets, common, common.start_number + i, "conn");
                plan.clients.push(ClientPlan {
                    spec,
                    role: Role::Idle,
                });
            }
            a.count
        }
        BenchCommand::Sub(a) => {
            build_sub(&mut plan, a, &targets, slice);
            a.count
        }
        BenchCommand::Pub(a) => {
            build_pub(&mut plan, a, &targets, slice)?;
            a.count
        }
        BenchCommand::Pubsub(a) => {
            build_pubsub(&mut plan, a, &targets, slice)?;
            a.pubs + a.subs
        }
    };
    check_files(plan.clients.len(), slice, total)?;
    if total > 28_000 && targets.source_count() == 0 {
        eprintln!(
            "roost-bench: warning: {total} connections from one source address may exhaust \
             the ~28k ephemeral ports per destination; pass --ifaddr 127.0.1.1,127.0.1.2,…"
        );
    }
    Ok(plan)
}

fn client_config(common: &CommonArgs) -> anyhow::Result<ClientConfig> {
    Ok(ClientConfig {
        version: ClientConfig::version_from_level(common.version)?,
        keepalive: common.keepalive,
        clean: common.clean,
        session_expiry: common.session_expiry,
        username: common.username.as_deref().map(ByteString::from),
        password: common
            .password
            .as_ref()
            .map(|p| Bytes::copy_from_slice(p.as_bytes())),
        connect_timeout: Duration::from_secs(common.connect_timeout_s.max(1)),
        transport: Transport::from_args(common)?,
        read_buffer: if common.lowmem {
            crate::client::LOWMEM_READ_BUFFER
        } else {
            crate::client::READ_BUFFER
        },
    })
}

/// Time between connection starts over the whole run, ns.
fn base_connect_interval_ns(common: &CommonArgs) -> u64 {
    match common.conn_rate {
        Some(0) => 0,
        Some(rate) => 1_000_000_000 / rate,
        None => common.interval_ms.saturating_mul(1_000_000),
    }
}

fn spec(targets: &Targets, common: &CommonArgs, index: u64, role: &str) -> ClientSpec {
    ClientSpec {
        index,
        client_id: client_id(common, role, index, run_token()),
        broker: targets.broker_for(index),
        source: targets.source_for(index),
    }
}

/// emqtt-bench's client ids: `<prefix><index>` with `--shortids`,
/// `<prefix>_bench_<role>_<index>` with `--prefix`, and
/// `<host>_bench_<role>_<index>_<run>` otherwise, where `<run>` differs per
/// process. The role keeps `sub` and `pub` runs apart, the run token two
/// runs of the same scenario.
pub fn client_id(common: &CommonArgs, role: &str, index: u64, run: &str) -> String {
    match (&common.prefix, common.shortids) {
        (prefix, true) => format!("{}{index}", prefix.as_deref().unwrap_or("")),
        (Some(prefix), false) => format!("{prefix}_bench_{role}_{index}"),
        (None, false) => {
            let host = common.ifaddr.first().cloned().unwrap_or_else(host_name);
            format!("{host}_bench_{role}_{index}_{run}")
        }
    }
}

/// This host's name, for client ids (`roost` when it cannot be read).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "roost".to_owned())
}

/// 8 hex digits that differ between processes started together (the pid)
/// and between runs (the clock), the same for every client of the process.
fn run_token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        format!(
            "{:04x}{:04x}",
            std::process::id() & 0xffff,
            (nanos >> 10) & 0xffff
        )
    })
}

fn build_sub(plan: &mut RunPlan, a: &SubArgs, targets: &Targets, slice: Slice) {
    plan.subscribe_phase = true;
    plan.duration_ns = secs_to_ns(a.duration_s);
    let qos = qos(a.qos);
    for i in slice.range(a.count) {
        let spec = spec(targets, &a.common, a.common.start_number + i, "sub");
        let filter = expand_topic(
            &a.topic,
            spec.index,
            &spec.client_id,
            a.common.username.as_deref(),
        );
        plan.clients.push(ClientPlan {
            spec,
            role: Role::Subscriber { filter, qos },
        });
    }
}

fn build_pub(
    plan: &mut RunPlan,
    a: &PubArgs,
    targets: &Targets,
    slice: Slice,
) -> anyhow::Result<()> {
    plan.duration_ns = secs_to_ns(a.duration_s);
    plan.warmup_ns = secs_to_ns(a.warmup_s);
    let encoder = Encoder::new(plan.client_cfg.version);
    let interval_ns = a.msg_interval_ms.saturating_mul(1_000_000);
    for i in slice.range(a.count) {
        let spec = spec(targets, &a.common, a.common.start_number + i, "pub");
        let topic = expand_topic(
            &a.topic,
            spec.index,
            &spec.client_id,
            a.common.username.as_deref(),
        );
        let limit = share_of(a.limit, a.count, i);
        if limit == 0 {
            plan.clients.push(ClientPlan {
                spec,
                role: Role::Idle,
            });
            continue;
        }
        let publish = PublishPlan {
            publisher: publisher_index(spec.index)?,
            template: match &a.message {
                Some(message) => PublishTemplate::fixed(
                    &encoder,
                    &topic,
                    qos(a.qos),
                    a.retain,
                    message.as_bytes(),
                )?,
                None => PublishTemplate::new(&encoder, &topic, qos(a.qos), a.retain, a.size)?,
            },
            qos: qos(a.qos),
            interval_ns,
            offset_ns: stagger(interval_ns, i, a.count),
            limit,
            inflight: a.inflight.max(1),
            drain: plan.drain,
        };
        plan.clients.push(ClientPlan {
            spec,
            role: Role::Publisher(Box::new(publish)),
        });
    }
    Ok(())
}

fn build_pubsub(
    plan: &mut RunPlan,
    a: &PubSubArgs,
    targets: &Targets,
    slice: Slice,
) -> anyhow::Result<()> {
    if a.size < HEADER_LEN {
        bail!(
            "-s {}: pubsub payloads need at least {HEADER_LEN} bytes (publisher, sequence, timestamp)",
            a.size
        );
    }
    if a.pubs == 0 || a.subs == 0 {
        bail!("pubsub needs at least one publisher and one subscriber (--pubs, --subs)");
    }
    if a.topic_mode == TopicMode::Pairs && a.pubs != a.subs {
        bail!(
            "--topic-mode pairs needs as many publishers as subscribers ({} vs {})",
            a.pubs,
            a.subs
        );
    }
    if a.duration_s == 0 {
        bail!("pubsub needs --duration of at least 1 second");
    }
    plan.subscribe_phase = true;
    plan.warmup_ns = secs_to_ns(a.warmup_s);
    plan.duration_ns = secs_to_ns(a.duration_s);
    plan.drain = Duration::from_secs(a.drain_timeout_s);
    plan.settle = Duration::from_millis(a.settle_ms);
    let fan = match a.topic_mode {
        TopicMode::Pairs => 1,
        TopicMode::Shared | TopicMode::Fanout => a.subs,
    };
    plan.deliveries_per_message = (!slice.is_child()).then_some(fan);

    let qos = qos(a.qos);
    let start = a.common.start_number;
    let sub_targets = if a.sub_hosts.is_empty() {
        targets.clone()
    } else {
        Targets::resolve_hosts(&a.sub_hosts, &a.common)?
    };
    for i in slice.range(a.subs) {
        let filter = match a.topic_mode {
            TopicMode::Shared => a.topic.clone(),
            TopicMode::Pairs => format!("{}/{}", a.topic, start + i),
            TopicMode::Fanout => format!("{}/#", a.topic),
        };
        plan.clients.push(ClientPlan {
            spec: spec(&sub_targets, &a.common, start + i, "pubsub_sub"),
            role: Role::Subscriber { filter, qos },
        });
    }
    let local_subs = slice.range(a.subs).count() as f64;
    let local_pubs = slice.range(a.pubs).count() as f64;
    if a.rate == 0 && a.max_backlog > 0 && local_pubs > 0.0 {
        // Deliveries this process's subscribers see per message its own
        // publishers send; in fan modes other processes publish at the same
        // pace, so scale by the share of publishers this process runs.
        let fan = match a.topic_mode {
            TopicMode::Pairs => 1.0,
            TopicMode::Shared | TopicMode::Fanout => local_subs * a.pubs as f64 / local_pubs,
        };
        plan.backlog = Some((a.max_backlog, fan));
    }
    let encoder = Encoder::new(plan.client_cfg.version);
    let interval_ns = if a.rate == 0 {
        0
    } else {
        (u64::try_from(u128::from(a.pubs) * 1_000_000_000 / u128::from(a.rate)).unwrap_or(u64::MAX))
            .max(1)
    };
    for i in slice.range(a.pubs) {
        let spec = spec(targets, &a.common, start + i, "pubsub_pub");
        let topic = match a.topic_mode {
            TopicMode::Shared => a.topic.clone(),
            TopicMode::Pairs | TopicMode::Fanout => format!("{}/{}", a.topic, start + i),
        };
        let publish = PublishPlan {
            publisher: publisher_index(spec.index)?,
            template: PublishTemplate::new(&encoder, &topic, qos, false, a.size)?,
            qos,
            interval_ns,
            offset_ns: stagger(interval_ns, i, a.pubs),
            limit: u64::MAX,
            inflight: a.inflight.max(1),
            drain: plan.drain,
        };
        plan.clients.push(ClientPlan {
            spec,
            role: Role::Publisher(Box::new(publish)),
        });
    }
    Ok(())
}

/// Replaces `%i` (client index), `%c` (client id) and `%u` (user name) in a topic.
pub fn expand_topic(pattern: &str, index: u64, client_id: &str, username: Option<&str>) -> String {
    pattern
        .replace("%i", &index.to_string())
        .replace("%c", client_id)
        .replace("%u", username.unwrap_or(""))
}

/// Client `i`'s share of `total` messages over `clients` (u64::MAX when unlimited).
pub fn share_of(total: u64, clients: u64, i: u64) -> u64 {
    if total == 0 {
        return u64::MAX;
    }
    let clients = clients.max(1);
    total / clients + u64::from(i < total % clients)
}

/// Spreads publishers' first messages evenly over one interval.
fn stagger(interval_ns: u64, i: u64, n: u64) -> u64 {
    u64::try_from(u128::from(interval_ns) * u128::from(i) / u128::from(n.max(1))).unwrap_or(0)
}

fn publisher_index(index: u64) -> anyhow::Result<u32> {
    u32::try_from(index)
        .with_context(|| format!("publisher index {index} does not fit the payload header"))
}

fn qos(level: u8) -> QoS {
    QoS::from_u8(level).unwrap_or(QoS::AtMostOnce)
}

fn secs_to_ns(secs: u64) -> u64 {
    secs.saturating_mul(1_000_000_000)
}

/// One process can hold only RLIMIT_NOFILE sockets (20,000 on the project's machines).
fn check_files(clients: usize, slice: Slice, total: u64) -> anyhow::Result<()> {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    let needed = u64::try_from(clients)
        .unwrap_or(u64::MAX)
        .saturating_add(SPARE_FILES);
    if needed > limit {
        let per_proc = limit.saturating_sub(SPARE_FILES).max(1);
        let procs = total.div_ceil(per_proc).max(slice.count + 1);
        bail!(
            "this process would open {clients} sockets but may hold at most {limit} files \
             (RLIMIT_NOFILE); split the clients over processes with --procs {procs}"
        );
    }
    Ok(())
}
