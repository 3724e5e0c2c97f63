//! `roost`: the Roost MQTT broker server.
//!
//! With no arguments it listens on 127.0.0.1:1883 and accepts anonymous
//! clients (loopback only, like Mosquitto 2). `-p` changes the port of the
//! first listener (that one, or the config file's first), `-c`
//! reads a TOML configuration file, `ROOST_<SECTION>__<KEY>` variables
//! override single keys. Sessions, subscriptions, queued and retained
//! messages are kept on disk under `./roost-data` (`--data-dir`, or
//! `[store]` in the config file; docs/persistence.md); `--store memory` keeps
//! them in the process only, `--store redis --redis-url URL` on a Redis server.

use std::path::PathBuf;
use std::process::ExitCode;

mod ctl;
mod logging;
mod passwd;

use clap::{Parser, Subcommand, ValueEnum};
use roost_broker::config::{Config, ListenerConfig, LogFormat};
use roost_broker::{Broker, DurabilityConfig, StoreBackend};

/// With the `mimalloc` feature (default) every allocation goes to mimalloc instead of
/// glibc malloc, which took about a third of the broker's CPU under a disk
/// store (issue #7; figures in docs/performance.md, "Allocator"). Through
/// `roost-alloc`, not `mimalloc::MiMalloc`, whose aligned calls put many
/// blocks in the next size class up (that crate's documentation).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: roost_alloc::Mimalloc = roost_alloc::Mimalloc;

/// Roost, an MQTT 5.0 / 3.1.1 / 3.1 broker.
#[derive(Debug, Parser)]
#[command(
    name = "roost",
    version,
    about = "Roost, an MQTT 5.0 / 3.1.1 / 3.1 broker",
    after_help = "With no options: 127.0.0.1:1883, anonymous clients allowed, state in ./roost-data.\n\
                  Settings: roost.example.toml and docs/configuration.md; from Mosquitto: \
                  docs/coming-from-mosquitto.md; from EMQX: docs/coming-from-emqx.md."
)]
struct Cli {
    /// Port of the first listener: the default loopback one, or the first
    /// `[[listeners]]` of the config file, whose port it replaces (0 picks a
    /// free port). The other listeners keep theirs.
    #[arg(short = 'p', long = "port")]
    port: Option<u16>,
    /// TOML configuration file (`roost.example.toml` shows the common settings).
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
    /// Log filter, overriding `[log] level` (RUST_LOG overrides both): one of
    /// error, warn, info, debug, trace, off, optionally per target
    /// (`info,roost::client=warn`).
    #[arg(long = "log-level")]
    log_level: Option<String>,
    /// Verbose: debug lines of the broker itself (not of the storage engine).
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// Log as JSON lines.
    #[arg(long = "log-json")]
    log_json: bool,
    /// Directory of the disk store (overrides `[store] data_dir`; default `./roost-data`).
    #[arg(long = "data-dir")]
    data_dir: Option<PathBuf>,
    /// Where persistent state is kept (overrides `[store] backend`; default `disk`).
    #[arg(long = "store", value_enum)]
    store: Option<StoreArg>,
    /// Redis server of `--store redis` (overrides `[store.redis] url`),
    /// e.g. `redis://127.0.0.1:6379/0`.
    #[arg(long = "redis-url")]
    redis_url: Option<String>,
    /// When a write counts as done (overrides `[store] durability`; default `async`).
    #[arg(long = "durability", value_enum)]
    durability: Option<DurabilityArg>,
    /// Join a cluster on this Redis (turns `[cluster]` on and overrides
    /// `[cluster.redis] url`), e.g. `redis://127.0.0.1:6379`, a Redis Cluster
    /// `redis+cluster://h1:7000,h2:7000,h3:7000` or Sentinel
    /// `redis+sentinel://s1:26379,s2:26379/mymaster`. docs/cluster.md.
    #[arg(long = "cluster-redis")]
    cluster_redis: Option<String>,
    /// This node's id in the cluster (overrides `[cluster] node_id`).
    #[arg(long = "node-id")]
    node_id: Option<String>,
    /// Address of the management API (overrides `[http] bind`; default
    /// 127.0.0.1:18083), e.g. `0.0.0.0:18083`. docs/management.md.
    #[arg(long = "http-bind")]
    http_bind: Option<std::net::SocketAddr>,
    /// Do not serve the management API (`[http] enabled = false`).
    #[arg(long = "no-http", conflicts_with = "http_bind")]
    no_http: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

/// `--store`: the config's [`StoreBackend`] under clap's value parser, so a
/// bad value is refused with the list of possible ones.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum StoreArg {
    /// In the process only: lost on restart.
    Memory,
    /// fjall under `--data-dir`.
    Disk,
    /// A Redis server at `--redis-url`.
    Redis,
}

/// `--durability`: the config's [`DurabilityConfig`] (docs/persistence.md).
#[derive(Debug, Clone, Copy, ValueEnum)]
enum DurabilityArg {
    /// Fsync only on shutdown.
    None,
    /// Fsync within `fsync_interval_ms` of a write; acknowledge at once.
    Async,
    /// Acknowledge QoS 1/2 only once fsynced (group commit).
    Sync,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a configuration file as a start would (certificates, password,
    /// ACL and ban files, log filter) without binding ports, and exit: 0 when
    /// it can start, 2 with every problem found otherwise.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// Create, update or delete users of a Mosquitto password file, with
    /// mosquitto_passwd's arguments.
    Passwd(passwd::PasswdArgs),
    /// Manage a running broker over its HTTP API (`status`, `clients`,
    /// `subs`, `retained`, `publish`, `ban`, `users`, `reload`, `metrics`),
    /// and create API keys and dashboard users locally (`api-key create`,
    /// `admin create`). docs/management.md.
    Ctl(ctl::CtlArgs),
    /// Load generator: `conn`, `sub`, `pub` (emqtt-bench flags) and `pubsub`
    /// (end-to-end latency, loss, duplicates, reordering).
    Bench(Box<roost_bench::BenchArgs>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Passwd(ref args)) => return passwd::run(args),
        Some(Command::Ctl(ref args)) => {
            return ctl::run(args, cli.config.as_deref(), cli.data_dir.as_deref());
        }
        Some(Command::Bench(args)) => {
            return match roost_bench::run(*args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("roost bench: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        Some(Command::CheckConfig { ref file }) => return check_config(file),
        None => {}
    }
    let mut config = match Config::load(cli.config.as_deref(), std::env::vars()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("roost: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(port) = cli.port {
        if config.listeners.is_empty() {
            config.listeners.push(ListenerConfig::loopback(port));
        } else if let Some(first) = config.listeners.first_mut() {
            first.bind.set_port(port);
        }
    }
    apply_store_flags(&mut config, &cli);
    if let Err(e) = config.validate() {
        eprintln!("roost: {e}");
        return ExitCode::from(2);
    }
    let filter = match log_filter(&config, cli.log_level.as_deref(), cli.verbose) {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!("roost: {e}");
            return ExitCode::from(2);
        }
    };
    let json = cli.log_json || config.log.format == LogFormat::Json;
    let _log = logging::init(filter, json);
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        pid = std::process::id(),
        "roost starting"
    );
    match &cli.config {
        Some(path) => tracing::info!(file = %path.display(), "configuration loaded"),
        None => tracing::info!("no configuration file (-c): built-in defaults"),
    }
    let runtime = match runtime_builder(available_cpus()).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(config))
}

/// The log filter in force: RUST_LOG, else `--log-level`, else `[log] level`.
/// An invalid one is an error naming the valid levels, never silence.
fn log_filter(
    config: &Config,
    level: Option<&str>,
    verbose: bool,
) -> Result<tracing_subscriber::EnvFilter, String> {
    if let Ok(env) = std::env::var("RUST_LOG")
        && !env.trim().is_empty()
    {
        return logging::filter(&env, verbose).map_err(|e| format!("RUST_LOG: {e}"));
    }
    match level {
        Some(level) => logging::filter(level, verbose).map_err(|e| format!("--log-level: {e}")),
        None => {
            logging::filter(&config.log.level, verbose).map_err(|e| format!("[log] level: {e}"))
        }
    }
}

/// `roost check-config FILE`: everything a start would load, no port bound.
fn check_config(file: &std::path::Path) -> ExitCode {
    let config = match Config::load(Some(file), std::env::vars()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("roost: {e}");
            return ExitCode::from(2);
        }
    };
    let mut problems = roost_broker::check::check(&config);
    if let Err(e) = logging::filter(&config.log.level, false) {
        problems.push(format!("log.level: {e}"));
    }
    if problems.is_empty() {
        println!("{}: OK", file.display());
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "roost: {}: {} problem{}",
        file.display(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for problem in problems {
        eprintln!("  - {problem}");
    }
    ExitCode::from(2)
}

/// CPUs this process may run on (its affinity mask, e.g. under `taskset`).
fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// The runtime for `cpus` usable CPUs. On one CPU a multi-threaded runtime
/// would still have exactly one worker, and pay for the machinery that lets
/// workers steal from each other on every wake-up; the single-threaded
/// scheduler cut broker CPU per SUBSCRIBE by ~7 % there
/// (docs/performance.md §5, "Subscribe"). The trade-off: when the store's
/// writer queue is full, `Persist::submit` then blocks the one thread until
/// there is room, where a multi-threaded runtime would move the other
/// connections to a new thread meanwhile.
fn runtime_builder(cpus: usize) -> tokio::runtime::Builder {
    let builder = if cpus <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    with_release_on_park(builder)
}

/// A worker about to idle hands its free memory back when the broker asked
/// (after connections hibernated); mimalloc releases a thread's pages only
/// on that thread. One atomic load per park otherwise.
#[cfg(feature = "mimalloc")]
fn with_release_on_park(mut builder: tokio::runtime::Builder) -> tokio::runtime::Builder {
    builder.on_thread_park(|| {
        roost_alloc::release_if_asked();
    });
    builder
}

/// glibc malloc (no `mimalloc` feature): nothing to release on park.
#[cfg(not(feature = "mimalloc"))]
fn with_release_on_park(builder: tokio::runtime::Builder) -> tokio::runtime::Builder {
    builder
}

/// `--store`, `--data-dir`, `--redis-url`, `--durability`, `--cluster-redis`
/// and `--node-id` win over the
/// config file and the `ROOST_STORE__*` variables. The server keeps its state
/// on disk unless one of them says otherwise.
fn apply_store_flags(config: &mut Config, cli: &Cli) {
    if let Some(store) = cli.store {
        config.store.backend = Some(match store {
            StoreArg::Memory => StoreBackend::Memory,
            StoreArg::Disk => StoreBackend::Disk,
            StoreArg::Redis => StoreBackend::Redis,
        });
    }
    if config.store.backend.is_none() {
        config.store.backend = Some(StoreBackend::Disk);
    }
    if let Some(dir) = &cli.data_dir {
        config.store.data_dir.clone_from(dir);
    }
    if let Some(url) = &cli.redis_url {
        config.store.redis.url.clone_from(url);
    }
    if let Some(url) = &cli.cluster_redis {
        config.cluster.enabled = true;
        config.cluster.redis.url.clone_from(url);
    }
    if let Some(id) = &cli.node_id {
        config.cluster.node_id = Some(id.clone());
    }
    if let Some(bind) = cli.http_bind {
        config.http.bind = Some(bind);
    }
    if cli.no_http {
        config.http.enabled = false;
    }
    if let Some(durability) = cli.durability {
        config.store.durability = match durability {
            DurabilityArg::None => DurabilityConfig::None,
            DurabilityArg::Async => DurabilityConfig::Async,
            DurabilityArg::Sync => DurabilityConfig::Sync,
        };
    }
}

async fn serve(config: Config) -> ExitCode {
    // Install the signal handlers before binding: a SIGTERM that arrives right
    // after the "listening" line must shut down gracefully, not kill the process.
    let signals = Signals::install();
    let builder = Broker::builder().config(config);
    #[cfg(feature = "mimalloc")]
    let builder = builder
        .memory_release(roost_alloc::ask_release)
        .thread_memory_release(roost_alloc::release_if_asked);
    let broker = match builder.bind().await {
        Ok(broker) => broker,
        Err(e) => {
            tracing::error!("{e}{}", bind_hint(&e));
            return ExitCode::FAILURE;
        }
    };
    if let Err(code) = start_admin(&broker).await {
        return code;
    }
    let handle = broker.handle();
    tokio::spawn(async move {
        let signal = signals.wait().await;
        // Shut down first, log second: whatever happens to the log (a closed
        // stderr), the signal has done its job.
        handle.shutdown();
        tracing::info!("{signal}: shutting down");
    });
    #[cfg(unix)]
    tokio::spawn(reload_on_sighup(broker.handle()));
    broker.run().await;
    ExitCode::SUCCESS
}

/// Binds and starts the management API (`[http]`) beside the broker. Its
/// default address taken (another broker on the machine) is logged and the
/// broker runs without it; an address configured explicitly must bind.
async fn start_admin(broker: &Broker) -> Result<(), ExitCode> {
    let handle = broker.handle();
    let http = &handle.config().http;
    if !http.enabled {
        return Ok(());
    }
    let explicit = http.bind.is_some();
    match roost_admin::AdminServer::bind(broker.handle(), None).await {
        Ok(server) => {
            server.announce();
            tokio::spawn(server.run());
            Ok(())
        }
        Err(e) if e.is_addr_in_use() && !explicit => {
            tracing::warn!(
                "{e}: running without the management API (set [http] bind or --http-bind \
                 to another address, or --no-http)"
            );
            Ok(())
        }
        Err(e) => {
            tracing::error!("{e}");
            Err(ExitCode::FAILURE)
        }
    }
}

/// What to do about a listener that cannot bind, for the two causes a new
/// user meets: another broker on the port, a privileged port.
fn bind_hint(error: &roost_broker::BrokerError) -> &'static str {
    match error {
        roost_broker::BrokerError::Bind { source, .. } => match source.kind() {
            std::io::ErrorKind::AddrInUse => {
                " (another broker, e.g. mosquitto, may hold the port: stop it or pick another with -p)"
            }
            std::io::ErrorKind::PermissionDenied => {
                " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
            }
            _ => "",
        },
        _ => "",
    }
}

/// SIGHUP reloads what can change live: the TLS certificates of every listener
/// and the password, SCRAM and ACL files (a bad file keeps the old rules).
#[cfg(unix)]
async fn reload_on_sighup(handle: roost_broker::BrokerHandle) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        return;
    };
    while hangup.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading TLS certificates and auth files");
        match handle.reload_tls() {
            Ok(0) => {}
            Ok(reloaded) => {
                tracing::info!(listeners = reloaded, "SIGHUP: TLS certificates reloaded")
            }
            Err(e) => tracing::warn!("SIGHUP: {e}"),
        }
        // Each built-in logs its own outcome (`reloaded` / `reload failed`).
        let _ = handle.reload_auth();
    }
}

/// SIGTERM and SIGINT, registered up front.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Self {
                term: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    /// Waits for one; returns its name.
    async fn wait(self) -> &'static str {
        #[cfg(unix)]
        if let Some(mut term) = self.term {
            return tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            };
        }
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::runtime_builder;

    #[test]
    fn one_cpu_gets_the_single_threaded_runtime_and_more_get_workers() {
        let one = runtime_builder(1).enable_all().build().unwrap();
        assert_eq!(
            one.handle().runtime_flavor(),
            tokio::runtime::RuntimeFlavor::CurrentThread
        );
        let two = runtime_builder(2).enable_all().build().unwrap();
        assert_eq!(
            two.handle().runtime_flavor(),
            tokio::runtime::RuntimeFlavor::MultiThread
        );
    }
}
