//! A dead node's janitor work as a job in Redis (docs/cluster.md, "Node
//! death"), so that a janitor dying halfway, or stopped by a Redis error,
//! leaves it to another node instead of losing it. The node that removes
//! a dead node (`EXPIRE_NODE`) is recorded as its janitor in `{sys}:jobs`
//! in the same script; the job's progress is `{n:<id>}:job`:
//!
//! ```text
//!  janitor  the node doing it        inc    the route incarnation it gave the dead node
//!  stage    orphans | replay | late  due    when the next step is (unix ms)
//!  from     the inbox checkpoint     pos    the last handoff entry delivered
//! ```
//!
//! `orphans`: the dead node's session list is set aside (`{n:<id>}:sess:<inc>`),
//! each session orphaned (`janitor.rs`: a script per session, so a second
//! pass skips those done) and the inbox claimed; `replay`: one lease later
//! the sessions whose clients have not come back are adopted (`adopt.rs`)
//! and the inbox replayed (`handoff.rs`), its position recorded per page;
//! `late`: a third of a lease later, what was still forwarded to the dead
//! node. Then the job is gone. Every renewal round, each node looks for
//! jobs whose janitor is not alive and takes one over (`TAKE_JOB`: one
//! node gets it) from its stage; the wills the dead janitor took and may
//! not have published are scheduled again (published once: taken out of
//! `owill` by one script).

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use redis::Script;

use crate::link::Link;
use crate::wire::{from_unix_ms, unix_ms};
use crate::{ClusterError, Shared, handoff, janitor, scripts, spread};

/// A step of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// The inbox replay and adoption are next.
    Replay,
    /// The late forwards are next.
    Late,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Replay => "replay",
            Stage::Late => "late",
        }
    }
}

/// Runs a dead node's janitor work from its recorded stage (this node is
/// its janitor): its sessions orphaned and its inbox claimed, or, further
/// on, its handoff queued again. `taken_over`: from a dead janitor (its
/// wills are scheduled again).
pub(crate) fn run(
    link: &mut Link,
    shared: &Shared,
    node: &str,
    taken_over: bool,
) -> Result<(), ClusterError> {
    let keys = &shared.keys;
    let job = keys.job_of(node);
    let record: HashMap<String, String> = link.run(|c| redis::cmd("HGETALL").arg(&job).query(c))?;
    let inc = match record.get("inc").and_then(|v| v.parse::<u64>().ok()) {
        Some(inc) => inc,
        None => {
            // Fenced at once (its route writes are refused; awake again, it
            // registers anew), but its routes stay until the handoff:
            // messages for its clients keep going to its inbox while they
            // move (`handoff.rs`).
            let inc: u64 =
                link.run(|c| redis::cmd("INCR").arg(keys.incarnation_of(node)).query(c))?;
            link.run(|c| {
                redis::cmd("HSET")
                    .arg(&job)
                    .arg("inc")
                    .arg(inc)
                    .arg("stage")
                    .arg("orphans")
                    .query::<()>(c)
            })?;
            inc
        }
    };
    let me = &shared.options.node_id;
    link.run(|c| {
        redis::cmd("HSET")
            .arg(&job)
            .arg("janitor")
            .arg(me)
            .query::<()>(c)
    })?;
    let aside = keys.sessions_aside(node, inc);
    let stage = match record.get("stage").map(String::as_str) {
        Some("replay") => Some(Stage::Replay),
        Some("late") => Some(Stage::Late),
        _ => None,
    };
    let Some(stage) = stage else {
        link.run(|c| {
            Script::new(scripts::SET_ASIDE)
                .key(keys.sessions_of(node))
                .key(&aside)
                .invoke::<i64>(c)
        })?;
        let clients = janitor::orphan_listed(link, shared, node, &aside, false, true)?;
        if taken_over {
            janitor::rearm_wills(link, shared, &clients)?;
        }
        let pending = handoff::claim(link, shared, node, inc, clients)?;
        advance(link, shared, node, Stage::Replay, shared.options.lease)?;
        shared.handoffs.lock().push(pending);
        return Ok(());
    };
    let clients: Vec<String> = link.run(|c| redis::cmd("SMEMBERS").arg(&aside).query(c))?;
    if taken_over {
        janitor::rearm_wills(link, shared, &clients)?;
    }
    let due = record
        .get("due")
        .and_then(|v| v.parse::<u64>().ok())
        .map_or_else(Instant::now, |ms| {
            let left = from_unix_ms(ms)
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            Instant::now() + left
        });
    let position = record
        .get("pos")
        .or_else(|| record.get("from").filter(|_| stage == Stage::Replay))
        .cloned();
    let pending = handoff::resume(shared, node, inc, stage, position, clients, due);
    shared.handoffs.lock().push(pending);
    Ok(())
}

/// Records that the job's next step is `stage`, due `after` from now;
/// false (nothing recorded) when the job is another node's now.
pub(crate) fn advance(
    link: &mut Link,
    shared: &Shared,
    node: &str,
    stage: Stage,
    after: Duration,
) -> Result<bool, ClusterError> {
    let due = unix_ms(SystemTime::now() + after).to_string();
    step(
        link,
        shared,
        node,
        &["stage", stage.name(), "due", &due, "-", "pos"],
    )
}

/// Records how far the replay got (the last handoff entry delivered);
/// false (nothing recorded) when the job is another node's now.
pub(crate) fn progress(
    link: &mut Link,
    shared: &Shared,
    node: &str,
    position: &str,
) -> Result<bool, ClusterError> {
    step(link, shared, node, &["pos", position])
}

/// Whether the job of `node` is still this node's (a janitor's replay
/// checks it before each page).
pub(crate) fn still_mine(
    link: &mut Link,
    shared: &Shared,
    node: &str,
) -> Result<bool, ClusterError> {
    step(link, shared, node, &[])
}

/// `JOB_STEP`: `args` written if the job is still this node's.
fn step(link: &mut Link, shared: &Shared, node: &str, args: &[&str]) -> Result<bool, ClusterError> {
    let mine: i64 = link.run(|c| {
        Script::new(scripts::JOB_STEP)
            .key(shared.keys.job_of(node))
            .arg(&shared.options.node_id)
            .arg(args)
            .invoke(c)
    })?;
    Ok(mine == 1)
}

/// The job is finished: its records go (if it is still this node's).
pub(crate) fn finish(
    link: &mut Link,
    shared: &Shared,
    node: &str,
    inc: u64,
) -> Result<(), ClusterError> {
    let keys = &shared.keys;
    let me = &shared.options.node_id;
    let mine: i64 = link.run(|c| {
        Script::new(scripts::JOB_DONE)
            .key(keys.jobs())
            .arg(node)
            .arg(me)
            .invoke(c)
    })?;
    if mine == 1 {
        link.run(|c| {
            redis::pipe()
                .del(keys.job_of(node))
                .ignore()
                .del(keys.sessions_aside(node, inc))
                .ignore()
                .query::<()>(c)
        })?;
    }
    Ok(())
}

/// Takes over the jobs whose janitor is not alive (`TAKE_JOB`) and runs
/// each from its stage. Called every renewal round, after this node
/// collected the nodes it saw die.
pub(crate) fn take_over(
    link: &mut Link,
    shared: &std::sync::Arc<Shared>,
    now: u64,
) -> Result<(), ClusterError> {
    let keys = &shared.keys;
    let me = &shared.options.node_id;
    let jobs: HashMap<String, String> =
        link.run(|c| redis::cmd("HGETALL").arg(keys.jobs()).query(c))?;
    for (node, janitor) in jobs {
        if janitor == *me {
            // Its own: in `handoffs` unless an error dropped it (then it
            // is run again from its stage, as a dead janitor's would be).
            if shared.handoffs.lock().iter().any(|p| p.node() == node)
                || shared.jobs_running.lock().contains(&node)
            {
                continue;
            }
        }
        let taken: i64 = link.run(|c| {
            Script::new(scripts::TAKE_JOB)
                .key(keys.jobs())
                .key(keys.nodes())
                .arg(&node)
                .arg(&janitor)
                .arg(me)
                .arg(now)
                .invoke(c)
        })?;
        if taken == 1 || janitor == *me {
            tracing::warn!(%node, dead_janitor = %janitor, "janitor job of a dead node taken over");
            run(link, shared, &node, janitor != *me)?;
        } else {
            // Another node's job, alive: this node may be one of the
            // adopters of the dead node's sessions (`spread.rs`).
            spread::look(link, shared, &node)?;
        }
    }
    Ok(())
}
