//! Command-line arguments, modelled on emqtt-bench so its users feel at home:
//! `conn`, `sub` and `pub` take the same short flags (`-h` host, `-p` port,
//! `-V` version, `-c` clients, `-i`/`-R` connect pacing, `-t` topic with
//! `%i`/`%c`, `-q`, `-s`, `-I`, `-L`, `-F`, `-k`, `--ifaddr`, `-u`/`-P`).
//! Because `-h` is the host, help is `--help` only.
//!
//! `pubsub` is Roost's own end-to-end scenario: publishers and subscribers
//! in one run, latency from a timestamp in the payload, loss/duplicate/
//! reorder accounting per publisher.

use clap::{ArgAction, Args, Subcommand, ValueEnum};

use crate::pacing::PacerKind;

/// `roost bench`: an MQTT load generator (emqtt-bench compatible flags).
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The scenario to run.
    #[command(subcommand)]
    pub command: BenchCommand,
}

/// The scenarios.
#[derive(Debug, Clone, Subcommand)]
pub enum BenchCommand {
    /// Open many connections at a given rate and hold them (connect rate,
    /// CONNACK latency, broker memory per connection).
    #[command(disable_help_flag = true)]
    Conn(ConnArgs),
    /// Connect clients that each subscribe to a topic, then receive
    /// (SUBACK rate, broker memory per subscription, receive rate).
    #[command(disable_help_flag = true)]
    Sub(SubArgs),
    /// Connect clients that each publish to a topic at an interval.
    #[command(disable_help_flag = true)]
    Pub(PubArgs),
    /// Publishers and subscribers in one run: end-to-end latency, received
    /// rate, loss, duplicates and reordering.
    #[command(disable_help_flag = true)]
    Pubsub(PubSubArgs),
}

/// Flags every scenario shares: where to connect, how, and how to report.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Print help (`-h` is the host, as in emqtt-bench).
    #[arg(long = "help", action = ArgAction::Help)]
    pub help: Option<bool>,
    /// Broker host(s), comma separated; clients use them round-robin.
    /// Only loopback addresses are allowed unless `--allow-remote`.
    #[arg(
        short = 'h',
        long = "host",
        default_value = "127.0.0.1",
        value_delimiter = ','
    )]
    pub hosts: Vec<String>,
    /// Broker port.
    #[arg(short = 'p', long = "port", default_value_t = 1883)]
    pub port: u16,
    /// MQTT protocol level: 3 (3.1), 4 (3.1.1) or 5 (5.0).
    #[arg(short = 'V', long = "version", default_value_t = 5,
          value_parser = clap::value_parser!(u8).range(3..=5))]
    pub version: u8,
    /// Interval between connection starts, in milliseconds (0 = as fast as
    /// `--max-connecting` allows). Ignored when `-R` is given.
    #[arg(short = 'i', long = "interval", default_value_t = 10)]
    pub interval_ms: u64,
    /// Connection rate in connections per second (overrides `-i`; 0 = as fast as possible).
    #[arg(short = 'R', long = "connrate")]
    pub conn_rate: Option<u64>,
    /// Most TCP+MQTT handshakes in flight at once. Keep it below the
    /// broker's listen backlog (Mosquitto uses 100): an overflowing backlog
    /// drops SYNs, which come back after a 1 s retransmit and swamp the
    /// connect-rate and latency figures.
    #[arg(long = "max-connecting", default_value_t = 64)]
    pub max_connecting: usize,
    /// Seconds before a connection attempt counts as failed.
    #[arg(long = "connect-timeout", default_value_t = 30)]
    pub connect_timeout_s: u64,
    /// First client index (`%i` of the first client).
    #[arg(short = 'n', long = "startnumber", default_value_t = 0)]
    pub start_number: u64,
    /// Client identifier prefix. Client ids are `<prefix>_bench_<role>_<index>`
    /// with it, `<host>_bench_<role>_<index>_<run>` without it (`<run>` is
    /// random per process), so `sub` and `pub` runs side by side never take
    /// over each other's sessions; `<prefix><index>` with `--shortids`.
    #[arg(long = "prefix")]
    pub prefix: Option<String>,
    /// Short client ids: `<prefix><index>` (just the index without `--prefix`).
    #[arg(long = "shortids")]
    pub shortids: bool,
    /// Low memory: 4 KiB read buffers per client instead of 64 KiB (many
    /// mostly idle clients).
    #[arg(short = 'l', long = "lowmem")]
    pub lowmem: bool,
    /// No progress line every second (the summary still prints).
    #[arg(long = "quiet")]
    pub quiet: bool,
    /// Keep Alive in seconds (0 disables it). Idle clients send PINGREQ.
    #[arg(short = 'k', long = "keepalive", default_value_t = 300)]
    pub keepalive: u16,
    /// Clean Start / Clean Session.
    #[arg(short = 'C', long = "clean", default_value_t = true, action = ArgAction::Set)]
    pub clean: bool,
    /// Session Expiry Interval in seconds (MQTT 5.0 only).
    #[arg(short = 'x', long = "session-expiry", default_value_t = 0)]
    pub session_expiry: u32,
    /// User name.
    #[arg(short = 'u', long = "username")]
    pub username: Option<String>,
    /// Password.
    #[arg(short = 'P', long = "password")]
    pub password: Option<String>,
    /// Local source addresses, comma separated, bound round-robin: each
    /// address has its own ~28k ephemeral ports, needed past ~28k connections.
    #[arg(long = "ifaddr", value_delimiter = ',')]
    pub ifaddr: Vec<String>,
    /// MQTT over WebSocket (binary frames, subprotocol `mqtt`); with `-S`,
    /// WebSocket over TLS.
    #[arg(long = "ws")]
    pub ws: bool,
    /// The WebSocket path (`--ws`).
    #[arg(long = "ws-path", default_value = "/mqtt")]
    pub ws_path: String,
    /// MQTT over TLS. Without `--cacertfile` the broker's certificate is
    /// accepted unverified, as emqtt-bench does (the handshake signatures
    /// are still checked).
    #[arg(short = 'S', long = "ssl")]
    pub ssl: bool,
    /// CA certificates (PEM) to verify the broker's certificate with (`-S`);
    /// a self-signed server certificate listed here is trusted as it is, as
    /// `mosquitto_sub --cafile` does.
    #[arg(long = "cacertfile")]
    pub cacertfile: Option<String>,
    /// Client certificate chain (PEM) for mutual TLS (`-S`, with `--keyfile`).
    #[arg(long = "certfile")]
    pub certfile: Option<String>,
    /// The client certificate's private key (PEM).
    #[arg(long = "keyfile")]
    pub keyfile: Option<String>,
    /// TLS server name (SNI, and the name the certificate must carry);
    /// default: the first `-h` host.
    #[arg(long = "sni")]
    pub sni: Option<String>,
    /// Allow a host that is not a loopback address.
    #[arg(long = "allow-remote")]
    pub allow_remote: bool,
    /// Run N processes, each with a slice of the clients (one process can
    /// hold about 19,000 sockets), and aggregate their results.
    #[arg(long = "procs", default_value_t = 1)]
    pub procs: usize,
    /// Runtime worker threads in each process (1 = single-threaded runtime,
    /// the cheapest when the load generator shares cores with the broker).
    #[arg(long = "threads", default_value_t = 1)]
    pub threads: usize,
    /// How paced publishers (`--rate`, `-I`) wait for their next message:
    /// `timerfd` (sub-millisecond, sends spread evenly) or `tokio` (the
    /// runtime's 1 ms timer, which sends in bursts on each tick; for comparison).
    #[arg(long = "pacer", value_enum, default_value_t = PacerKind::Timerfd)]
    pub pacer: PacerKind,
    /// Broker process id(s), comma separated: sample their CPU time
    /// (utime+stime) and RSS from /proc at each phase, to report CPU per
    /// message and memory per client. Several ids (the nodes of a cluster)
    /// are summed.
    #[arg(long = "broker-pid", value_delimiter = ',')]
    pub broker_pid: Vec<u32>,
    /// Print the result as one JSON object on stdout (the human summary goes to stderr).
    #[arg(long = "json")]
    pub json: bool,
    /// Internal: this process is child `I/N` of a `--procs` run.
    #[arg(long = "child", hide = true)]
    pub child: Option<String>,
}

/// `conn`: connect and hold.
#[derive(Debug, Clone, Args)]
pub struct ConnArgs {
    /// Shared flags.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Number of clients.
    #[arg(short = 'c', long = "count", default_value_t = 200)]
    pub count: u64,
    /// Seconds to hold the connections once all are up (0 = until Ctrl-C).
    #[arg(long = "duration", default_value_t = 0)]
    pub duration_s: u64,
}

/// `sub`: connect, subscribe, receive.
#[derive(Debug, Clone, Args)]
pub struct SubArgs {
    /// Shared flags.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Number of clients.
    #[arg(short = 'c', long = "count", default_value_t = 200)]
    pub count: u64,
    /// Topic filter; `%i` is the client index, `%c` the client id, `%u` the user name.
    #[arg(short = 't', long = "topic")]
    pub topic: String,
    /// Subscription QoS.
    #[arg(short = 'q', long = "qos", default_value_t = 0,
          value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Seconds to receive once all are subscribed (0 = until Ctrl-C).
    #[arg(long = "duration", default_value_t = 0)]
    pub duration_s: u64,
}

/// `pub`: connect, then publish at an interval.
#[derive(Debug, Clone, Args)]
pub struct PubArgs {
    /// Shared flags.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Number of clients.
    #[arg(short = 'c', long = "count", default_value_t = 200)]
    pub count: u64,
    /// Topic name; `%i` is the client index, `%c` the client id, `%u` the user name.
    #[arg(short = 't', long = "topic")]
    pub topic: String,
    /// Publish QoS.
    #[arg(short = 'q', long = "qos", default_value_t = 0,
          value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Payload size in bytes (16 or more carries the sequence/timestamp header).
    #[arg(short = 's', long = "size", default_value_t = 256)]
    pub size: usize,
    /// The payload, as given (instead of `-s` bytes with a header; receivers
    /// then cannot measure latency or loss).
    #[arg(short = 'm', long = "message")]
    pub message: Option<String>,
    /// Interval between publishes of one client, in milliseconds (0 = as fast as possible).
    #[arg(short = 'I', long = "interval_of_msg", default_value_t = 1000)]
    pub msg_interval_ms: u64,
    /// Total messages to publish across all clients (0 = no limit).
    #[arg(short = 'L', long = "limit", default_value_t = 0)]
    pub limit: u64,
    /// QoS 1/2 messages in flight per client (also capped by the broker's Receive Maximum).
    #[arg(short = 'F', long = "inflight", default_value_t = 1)]
    pub inflight: u16,
    /// Set the RETAIN flag.
    #[arg(short = 'r', long = "retain")]
    pub retain: bool,
    /// Wait for all clients to connect before publishing (always the case here; kept for emqtt-bench compatibility).
    #[arg(short = 'w', long = "wait-before-publishing")]
    pub wait: bool,
    /// Seconds to publish (0 = until the limit or Ctrl-C).
    #[arg(long = "duration", default_value_t = 0)]
    pub duration_s: u64,
    /// Seconds at the start not counted in rates and broker CPU.
    #[arg(long = "warmup", default_value_t = 0)]
    pub warmup_s: u64,
}

/// How publishers' topics map to subscribers' filters in `pubsub`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TopicMode {
    /// Every publisher publishes to `<topic>`; every subscriber subscribes to
    /// it and receives everything (fan-in when there is one subscriber).
    Shared,
    /// Publisher `i` publishes to `<topic>/i`, subscriber `i` subscribes to
    /// it: point to point. Needs as many publishers as subscribers.
    Pairs,
    /// Publisher `i` publishes to `<topic>/i`; every subscriber subscribes
    /// to `<topic>/#` and receives everything (fan-out).
    Fanout,
}

/// `pubsub`: publishers and subscribers in one run.
#[derive(Debug, Clone, Args)]
pub struct PubSubArgs {
    /// Shared flags.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Number of publishers.
    #[arg(long = "pubs", default_value_t = 1)]
    pub pubs: u64,
    /// Number of subscribers.
    #[arg(long = "subs", default_value_t = 1)]
    pub subs: u64,
    /// How topics map publishers to subscribers.
    #[arg(long = "topic-mode", value_enum, default_value_t = TopicMode::Fanout)]
    pub topic_mode: TopicMode,
    /// Broker host(s) for the subscribers, comma separated (default: `-h`,
    /// like the publishers). With the nodes of a cluster on different
    /// addresses, `-h A --sub-host B` sends every message across nodes.
    #[arg(long = "sub-host", value_delimiter = ',')]
    pub sub_hosts: Vec<String>,
    /// Topic prefix.
    #[arg(short = 't', long = "topic", default_value = "bench")]
    pub topic: String,
    /// QoS of the publishes and of the subscriptions.
    #[arg(short = 'q', long = "qos", default_value_t = 0,
          value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Payload size in bytes (at least 16: publisher, sequence and timestamp).
    #[arg(short = 's', long = "size", default_value_t = 16)]
    pub size: usize,
    /// Target total publish rate in messages per second, paced open-loop
    /// across the publishers (0 = as fast as possible).
    #[arg(long = "rate", default_value_t = 0)]
    pub rate: u64,
    /// Seconds to publish after the warm-up.
    #[arg(long = "duration", default_value_t = 10)]
    pub duration_s: u64,
    /// Seconds of publishing before measurement starts (not counted in
    /// rates, latency or broker CPU; counted for loss).
    #[arg(long = "warmup", default_value_t = 1)]
    pub warmup_s: u64,
    /// QoS 1/2 messages in flight per publisher (also capped by the broker's Receive Maximum).
    #[arg(short = 'F', long = "inflight", default_value_t = 64)]
    pub inflight: u16,
    /// At maximum rate (`--rate 0`), most deliveries outstanding per process
    /// (sent × fan-out − received) before publishers wait: keeps kernel
    /// buffers and broker queues from absorbing an unbounded backlog, so
    /// throughput and latency at saturation are meaningful (0 = no cap).
    #[arg(long = "max-backlog", default_value_t = 10_000)]
    pub max_backlog: u64,
    /// Most seconds to wait after publishing stops for messages still on their way.
    #[arg(long = "drain-timeout", default_value_t = 10)]
    pub drain_timeout_s: u64,
    /// Milliseconds to wait after the last SUBACK before publishing. A
    /// cluster node learns another node's subscriptions from Redis some time
    /// after their SUBACK; publishing at once, across nodes, reaches nobody.
    #[arg(long = "settle-ms", default_value_t = 0)]
    pub settle_ms: u64,
}

impl BenchCommand {
    /// The shared flags of whichever scenario this is.
    pub fn common(&self) -> &CommonArgs {
        match self {
            Self::Conn(a) => &a.common,
            Self::Sub(a) => &a.common,
            Self::Pub(a) => &a.common,
            Self::Pubsub(a) => &a.common,
        }
    }

    /// The scenario's name as typed on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Conn(_) => "conn",
            Self::Sub(_) => "sub",
            Self::Pub(_) => "pub",
            Self::Pubsub(_) => "pubsub",
        }
    }
}
