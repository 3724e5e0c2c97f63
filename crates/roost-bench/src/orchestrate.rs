//! Runs one process's plan through the phases: connect everyone (paced),
//! subscribe everyone, publish for the window, let in-flight messages
//! arrive, stop, and collect every client's counters.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::backlog::Backlog;
use crate::client::{self, ClientConfig};
use crate::clock::{now_ns, secs_between, sleep_until_ns};
use crate::coord::Coordinator;
use crate::latency::{LatencyHist, SharedHist};
use crate::pacing::{PaceStats, Pacer, wait_before};
use crate::phase::{Control, Event, Phase, Progress, RoleKind, Window};
use crate::plan::{ClientPlan, Role, RunPlan};
use crate::probe::Samples;
use crate::procstat;
use crate::publisher;
use crate::raw::RawResult;
use crate::session::{RecvAccount, Session, Until};
use crate::stats::{PubStats, RecvStats};

/// Silence after which in-flight messages are considered all arrived.
const DRAIN_IDLE_NS: u64 = 1_000_000_000;

/// What one client task returns.
#[derive(Debug, Default)]
struct Outcome {
    publish: Option<PubStats>,
    receive: Option<RecvStats>,
}

/// Event counts and phase latencies gathered while the run goes.
#[derive(Debug, Default)]
struct Tally {
    connected: usize,
    connect_failed: usize,
    connected_subs: usize,
    connected_pubs: usize,
    subscribed: usize,
    sub_granted: u64,
    sub_failed: usize,
    pubs_done: usize,
    sent_total: u64,
    lost: u64,
    last_connack_ns: u64,
    last_suback_ns: u64,
    connack: LatencyHist,
    suback: LatencyHist,
    raw: RawResult,
}

impl Tally {
    fn apply(&mut self, event: Event) {
        let now = now_ns();
        match event {
            Event::Connected { latency_ns, kind } => {
                self.connected += 1;
                self.last_connack_ns = now;
                self.connack.record(latency_ns);
                match kind {
                    RoleKind::Subscriber => self.connected_subs += 1,
                    RoleKind::Publisher => self.connected_pubs += 1,
                    RoleKind::Idle => {}
                }
            }
            Event::ConnectFailed(e) => {
                self.connect_failed += 1;
                self.raw.add_error(format!("connect: {e}"));
            }
            Event::Subscribed {
                latency_ns,
                granted,
            } => {
                self.subscribed += 1;
                self.last_suback_ns = now;
                self.suback.record(latency_ns);
                if granted {
                    self.sub_granted += 1;
                } else {
                    self.raw
                        .add_error("subscribe: refused by the broker".to_owned());
                }
            }
            Event::SubscribeFailed(e) => {
                self.sub_failed += 1;
                self.raw.add_error(format!("subscribe: {e}"));
            }
            Event::PublisherDone { sent } => {
                self.pubs_done += 1;
                self.sent_total += sent;
            }
            Event::Lost(e) => {
                self.lost += 1;
                self.raw.add_error(format!("connection lost: {e}"));
            }
        }
    }
}

/// Why a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WaitEnd {
    Done,
    Deadline,
    Interrupted,
}

/// Runs the plan; returns the raw result and the broker samples.
pub(crate) async fn run(
    plan: RunPlan,
    mut coord: Coordinator,
) -> anyhow::Result<(RawResult, Samples)> {
    let loadgen_start = procstat::sample(None).unwrap_or_default();
    let interrupt = spawn_interrupt_watch();
    let (phase_tx, phase_rx) = watch::channel(Phase::Connect);
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let ctl = control(&plan, phase_rx, events_tx);
    let (stop, progress, pace) = (
        Arc::clone(&ctl.stop),
        Arc::clone(&ctl.progress),
        Arc::clone(&ctl.pace),
    );
    let pacer_used = plan.has_paced_publishers().then(|| ctl.pacer.kind());
    let e2e = SharedHist::default();
    let mut w = Waiter {
        events: &mut events,
        interrupt,
        tally: Tally::default(),
        ticker: plan
            .progress_line
            .then(|| Ticker::new(Arc::clone(&progress))),
    };

    let n_clients = plan.clients.len();
    let (n_pubs, n_subs) = (plan.publishers(), plan.subscribers());
    w.tally.raw.procs = 1;
    w.tally.raw.connect.attempted = n_clients as u64;
    w.tally.raw.connect.first_ns = now_ns();
    let pacing = Pacing {
        interval_ns: plan.connect_interval_ns,
        offset_ns: plan.connect_offset_ns,
        max_connecting: plan.max_connecting,
    };
    let launcher = tokio::spawn(launch(
        plan.clients,
        Arc::new(plan.client_cfg),
        pacing,
        ctl.clone(),
        e2e.clone(),
    ));

    connect_phase(&mut w, n_clients, &mut coord).await?;
    if plan.subscribe_phase && !w.interrupted() {
        subscribe_phase(&mut w, &phase_tx, &mut coord).await?;
        if !plan.settle.is_zero() && !w.interrupted() {
            // `--settle-ms`: subscriptions reach a cluster's other nodes
            // after their SUBACK.
            let until =
                now_ns().saturating_add(u64::try_from(plan.settle.as_nanos()).unwrap_or(u64::MAX));
            w.wait(Some(until), |_| false).await;
        }
    }
    let go = coord.barrier("run").await?;
    let window = Window::new(go, plan.warmup_ns, plan.duration_ns);
    phase_tx.send_replace(Phase::Run(window));
    let end_ns = run_phase(&mut w, window, n_pubs, &mut coord).await;
    stop.store(true, Ordering::Relaxed);

    // Let publishers finish their last batch and in-flight messages arrive.
    let drain_until =
        now_ns().saturating_add(u64::try_from(plan.drain.as_nanos()).unwrap_or(u64::MAX));
    let pubs = w.tally.connected_pubs;
    w.wait(Some(drain_until), |t| t.pubs_done + lost_pubs(t) >= pubs)
        .await;
    let mut drain_timed_out = false;
    if n_subs > 0 && n_pubs > 0 {
        let expected = plan
            .deliveries_per_message
            .map(|fan| w.tally.sent_total.saturating_mul(fan));
        drain_timed_out = drain(&mut w, &progress, expected, end_ns, drain_until).await;
    }

    // Stop and collect.
    phase_tx.send_replace(Phase::Stop);
    let mut raw = collect(launcher, plan.drain, &mut w).await;
    raw.window = Window {
        start_ns: go,
        warm_ns: window.warm_ns,
        end_ns,
    };
    raw.e2e_latency = e2e.snapshot().to_buckets();
    raw.pacer = pacer_used;
    let (lag, gaps) = pace.snapshot();
    raw.schedule_lag = lag.to_buckets();
    raw.send_gaps = gaps.to_buckets();
    raw.drain_timed_out = drain_timed_out;
    let loadgen_end = procstat::sample(None).unwrap_or_default();
    raw.loadgen_cpu_s = (loadgen_end.cpu_s - loadgen_start.cpu_s).max(0.0);
    raw.loadgen_wait_s = (loadgen_end.runqueue_wait_s - loadgen_start.runqueue_wait_s).max(0.0);
    Ok((raw, coord.into_samples()))
}

/// What every client task shares: the phase, the stop flag, where events
/// go, the progress counters, the backlog and the pacer.
fn control(
    plan: &RunPlan,
    phase: watch::Receiver<Phase>,
    events: mpsc::UnboundedSender<Event>,
) -> Control {
    let progress = Arc::new(Progress::default());
    Control {
        phase,
        stop: Arc::new(AtomicBool::new(false)),
        events,
        backlog: plan
            .backlog
            .map(|(cap, fan)| Arc::new(Backlog::new(cap, fan, Arc::clone(&progress)))),
        progress,
        // The timerfd and its driver task only when someone paces.
        pacer: if plan.has_paced_publishers() {
            Pacer::start(plan.pacer)
        } else {
            Pacer::Tokio
        },
        pace: Arc::new(PaceStats::default()),
    }
}

/// Phase 1: waits until every client connected or failed, then meets the
/// other processes.
async fn connect_phase(
    w: &mut Waiter<'_>,
    n_clients: usize,
    coord: &mut Coordinator,
) -> anyhow::Result<()> {
    w.wait(None, |t| t.connected + t.connect_failed >= n_clients)
        .await;
    eprintln!(
        "roost-bench: {} of {n_clients} clients connected in {:.2} s",
        w.tally.connected,
        secs_between(
            w.tally.raw.connect.first_ns,
            w.tally.last_connack_ns.max(w.tally.raw.connect.first_ns)
        ),
    );
    coord.barrier("connected").await?;
    Ok(())
}

/// Phase 2: every connected subscriber subscribes; waits for their answers,
/// then meets the other processes.
async fn subscribe_phase(
    w: &mut Waiter<'_>,
    phase_tx: &watch::Sender<Phase>,
    coord: &mut Coordinator,
) -> anyhow::Result<()> {
    w.tally.raw.subscribe.first_ns = now_ns();
    phase_tx.send_replace(Phase::Subscribe);
    let subs = w.tally.connected_subs;
    w.wait(None, |t| t.subscribed + t.sub_failed >= subs).await;
    eprintln!(
        "roost-bench: {} of {subs} subscriptions granted in {:.2} s",
        w.tally.sub_granted,
        secs_between(
            w.tally.raw.subscribe.first_ns,
            w.tally.last_suback_ns.max(w.tally.raw.subscribe.first_ns)
        ),
    );
    coord.barrier("subscribed").await?;
    Ok(())
}

/// Phase 3: the measured window (after the warm-up), or until publishers are
/// done, or until Ctrl-C; returns when it ended.
async fn run_phase(
    w: &mut Waiter<'_>,
    window: Window,
    n_pubs: usize,
    coord: &mut Coordinator,
) -> u64 {
    let warmed = window.warm_ns <= window.start_ns
        || w.wait(Some(window.warm_ns), |_| false).await != WaitEnd::Interrupted;
    if warmed {
        coord.sample("warm");
    }
    if window.is_bounded() {
        w.wait(Some(window.end_ns), |_| false).await;
    } else if n_pubs > 0 {
        let pubs = w.tally.connected_pubs;
        w.wait(None, |t| t.pubs_done + lost_pubs(t) >= pubs).await;
    } else if w.tally.connected > 0 {
        // Held until Ctrl-C; with no client connected there is nothing to
        // hold, and the report (every attempt failed) is due now.
        w.wait(None, |_| false).await;
    }
    let end_ns = now_ns().min(window.end_ns);
    coord.sample("end");
    end_ns
}

/// Lost connections are not attributed to a role; assume the worst case
/// for publishers so that waits never outlast a broken publisher.
fn lost_pubs(t: &Tally) -> usize {
    usize::try_from(t.lost).unwrap_or(usize::MAX)
}

/// Waits until every message sent has arrived (when the expected count is
/// known), nothing arrived for a second, or the drain deadline passes.
/// Returns true if the deadline cut it short while messages still arrived.
async fn drain(
    w: &mut Waiter<'_>,
    progress: &Progress,
    expected: Option<u64>,
    end_ns: u64,
    deadline_ns: u64,
) -> bool {
    loop {
        let now = now_ns();
        let unique = progress.unique.load(Ordering::Relaxed);
        let last = progress.last_recv_ns.load(Ordering::Relaxed).max(end_ns);
        if expected.is_some_and(|e| unique >= e) || now.saturating_sub(last) >= DRAIN_IDLE_NS {
            return false;
        }
        if now >= deadline_ns {
            return true;
        }
        let tick = now.saturating_add(20_000_000).min(deadline_ns);
        if w.wait(Some(tick), |_| false).await == WaitEnd::Interrupted {
            return false;
        }
    }
}

/// Collects every client's outcome after `Phase::Stop`.
async fn collect(
    launcher: tokio::task::JoinHandle<JoinSet<Outcome>>,
    drain: Duration,
    w: &mut Waiter<'_>,
) -> RawResult {
    let mut set = match launcher.await {
        Ok(set) => set,
        Err(e) => {
            w.tally.raw.add_error(format!("launcher failed: {e}"));
            JoinSet::new()
        }
    };
    let deadline = tokio::time::Instant::now() + drain + Duration::from_secs(10);
    let mut publish = PubStats::default();
    let mut receive = RecvStats::default();
    loop {
        match tokio::time::timeout_at(deadline, set.join_next()).await {
            Ok(Some(Ok(outcome))) => {
                if let Some(p) = outcome.publish {
                    publish.merge(&p);
                }
                if let Some(r) = outcome.receive {
                    receive.merge(&r);
                }
            }
            Ok(Some(Err(e))) => w.tally.raw.add_error(format!("client task failed: {e}")),
            Ok(None) => break,
            Err(_) => {
                let left = set.len();
                set.abort_all();
                w.tally.raw.add_errors(
                    "client did not finish in time after the run stopped".to_owned(),
                    left as u64,
                );
                break;
            }
        }
    }
    // Events sent while closing (a late PublisherDone, a lost connection).
    while let Ok(event) = w.events.try_recv() {
        w.tally.apply(event);
    }
    let t = &mut w.tally;
    let mut raw = std::mem::take(&mut t.raw);
    raw.connect.ok = t.connected as u64;
    raw.connect.failed = t.connect_failed as u64;
    raw.connect.last_ns = t.last_connack_ns;
    raw.connect.latency = t.connack.to_buckets();
    raw.subscribe.attempted = t.connected_subs as u64;
    raw.subscribe.ok = t.sub_granted;
    raw.subscribe.failed = (t.subscribed as u64 - t.sub_granted) + t.sub_failed as u64;
    raw.subscribe.last_ns = t.last_suback_ns;
    raw.subscribe.latency = t.suback.to_buckets();
    raw.publish = publish;
    raw.receive = receive;
    raw.lost_connections = t.lost;
    raw
}

/// Waits on events with an optional deadline, stopping early on Ctrl-C.
struct Waiter<'a> {
    events: &'a mut mpsc::UnboundedReceiver<Event>,
    interrupt: watch::Receiver<bool>,
    tally: Tally,
    /// The once-a-second progress line, unless `--quiet`.
    ticker: Option<Ticker>,
}

/// emqtt-bench's progress output: one line a second on stderr with the
/// clients connected, messages sent and received (total and per second)
/// and errors so far.
struct Ticker {
    progress: Arc<Progress>,
    start_ns: u64,
    next_ns: u64,
    last_sent: u64,
    last_received: u64,
}

impl Ticker {
    const PERIOD_NS: u64 = 1_000_000_000;

    fn new(progress: Arc<Progress>) -> Self {
        let start_ns = now_ns();
        Self {
            progress,
            start_ns,
            next_ns: start_ns + Self::PERIOD_NS,
            last_sent: 0,
            last_received: 0,
        }
    }

    fn tick(&mut self, tally: &Tally) {
        let now = now_ns();
        let sent = self.progress.sent.load(Ordering::Relaxed);
        let received = self.progress.received.load(Ordering::Relaxed);
        let errors: u64 = tally.raw.errors.values().sum();
        eprintln!(
            "roost-bench: [{:>4} s] connected {}, sent {sent} ({}/s), received {received} ({}/s), errors {errors}",
            (now - self.start_ns) / Self::PERIOD_NS,
            tally.connected,
            sent - self.last_sent,
            received - self.last_received,
        );
        self.last_sent = sent;
        self.last_received = received;
        while self.next_ns <= now {
            self.next_ns += Self::PERIOD_NS;
        }
    }
}

impl Waiter<'_> {
    fn interrupted(&self) -> bool {
        *self.interrupt.borrow()
    }

    async fn wait(&mut self, deadline_ns: Option<u64>, done: impl Fn(&Tally) -> bool) -> WaitEnd {
        loop {
            while let Ok(event) = self.events.try_recv() {
                self.tally.apply(event);
            }
            if done(&self.tally) {
                return WaitEnd::Done;
            }
            if self.interrupted() {
                return WaitEnd::Interrupted;
            }
            if deadline_ns.is_some_and(|d| now_ns() >= d) {
                return WaitEnd::Deadline;
            }
            let tick_ns = self.ticker.as_ref().map_or(u64::MAX, |t| t.next_ns);
            tokio::select! {
                () = sleep_until_ns(tick_ns), if self.ticker.is_some() => {
                    if let Some(ticker) = self.ticker.as_mut() {
                        ticker.tick(&self.tally);
                    }
                }
                event = self.events.recv() => match event {
                    Some(event) => self.tally.apply(event),
                    None => return WaitEnd::Done,
                },
                () = sleep_until_ns(deadline_ns.unwrap_or(u64::MAX)), if deadline_ns.is_some() => {
                    return WaitEnd::Deadline;
                }
                _ = self.interrupt.changed() => {}
            }
        }
    }
}

/// Ctrl-C ends the run early but still reports; a second Ctrl-C exits.
fn spawn_interrupt_watch() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("roost-bench: interrupted; finishing the run (Ctrl-C again to quit)");
            tx.send_replace(true);
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    rx
}

/// Connection pacing of this process.
#[derive(Debug, Clone, Copy)]
struct Pacing {
    interval_ns: u64,
    offset_ns: u64,
    max_connecting: usize,
}

/// Starts the clients at the paced times; each runs in its own task.
async fn launch(
    clients: Vec<ClientPlan>,
    cfg: Arc<ClientConfig>,
    pacing: Pacing,
    ctl: Control,
    e2e: SharedHist,
) -> JoinSet<Outcome> {
    let connecting = Arc::new(Semaphore::new(pacing.max_connecting));
    let t0 = now_ns().saturating_add(pacing.offset_ns);
    let mut set = JoinSet::new();
    for (k, client) in clients.into_iter().enumerate() {
        if let Some(due) = wait_before(now_ns(), t0, k as u64, pacing.interval_ns) {
            sleep_until_ns(due).await;
        }
        if ctl.stopping() {
            break;
        }
        let Ok(permit) = Arc::clone(&connecting).acquire_owned().await else {
            break;
        };
        set.spawn(client_task(
            client,
            Arc::clone(&cfg),
            ctl.clone(),
            e2e.clone(),
            permit,
        ));
    }
    set
}

/// One client from connect to close.
async fn client_task(
    client: ClientPlan,
    cfg: Arc<ClientConfig>,
    mut ctl: Control,
    e2e: SharedHist,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Outcome {
    let kind = match client.role {
        Role::Idle => RoleKind::Idle,
        Role::Subscriber { .. } => RoleKind::Subscriber,
        Role::Publisher(_) => RoleKind::Publisher,
    };
    let conn = match client::connect(&client.spec, &cfg).await {
        Ok((conn, latency_ns)) => {
            ctl.report(Event::Connected { latency_ns, kind });
            conn
        }
        Err(e) => {
            ctl.report(Event::ConnectFailed(format!("{e:#}")));
            return Outcome::default();
        }
    };
    drop(permit);
    let mut session = Session::new(conn, RecvAccount::new(e2e, Arc::clone(&ctl.progress)));
    match client.role {
        Role::Idle => {
            let served = session
                .serve(&mut ctl, Until::Phase(|p| *p == Phase::Stop))
                .await;
            report_lost(&ctl, served);
            session.close().await;
            Outcome::default()
        }
        Role::Subscriber { filter, qos } => {
            let served = subscribe_then_receive(&mut session, &mut ctl, &filter, qos).await;
            report_lost(&ctl, served);
            Outcome {
                receive: Some(session.close().await),
                publish: None,
            }
        }
        Role::Publisher(plan) => {
            let waited = session
                .serve(
                    &mut ctl,
                    Until::Phase(|p| matches!(p, Phase::Run(_) | Phase::Stop)),
                )
                .await;
            let phase = *ctl.phase.borrow();
            match (waited, phase) {
                (Ok(()), Phase::Run(window)) => {
                    let (stats, result) =
                        publisher::publish(session, *plan, window, &mut ctl).await;
                    report_lost(&ctl, result);
                    Outcome {
                        publish: Some(stats),
                        receive: None,
                    }
                }
                (waited, _) => {
                    report_lost(&ctl, waited);
                    session.close().await;
                    Outcome::default()
                }
            }
        }
    }
}

/// Subscribes when the subscribe phase starts, reports the SUBACK, then
/// receives until the run stops.
async fn subscribe_then_receive(
    session: &mut Session,
    ctl: &mut Control,
    filter: &str,
    qos: roost_codec::QoS,
) -> anyhow::Result<()> {
    session
        .serve(ctl, Until::Phase(|p| *p != Phase::Connect))
        .await?;
    if *ctl.phase.borrow() == Phase::Stop {
        return Ok(());
    }
    let subscribed = async {
        session.subscribe(filter, qos).await?;
        session.serve(ctl, Until::SubAck).await
    }
    .await;
    match (subscribed, session.suback()) {
        (Ok(()), Some((latency_ns, granted))) => ctl.report(Event::Subscribed {
            latency_ns,
            granted,
        }),
        (Err(e), _) => {
            ctl.report(Event::SubscribeFailed(format!("{e:#}")));
            return Ok(());
        }
        (Ok(()), None) => {
            ctl.report(Event::SubscribeFailed("no SUBACK".to_owned()));
            return Ok(());
        }
    }
    session
        .serve(ctl, Until::Phase(|p| *p == Phase::Stop))
        .await
}

fn report_lost(ctl: &Control, result: anyhow::Result<()>) {
    if let Err(e) = result {
        ctl.report(Event::Lost(format!("{e:#}")));
    }
}
