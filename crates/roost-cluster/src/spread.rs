//! Adoption spread over the live nodes (docs/cluster.md, "Adoption"): the
//! sessions of a dead node whose clients have not come back are not all
//! parked on its janitor's node, whose memory and traffic they would be.
//!
//! At the adoption step (one lease after the death, `handoff.rs`) the
//! janitor records in the job (`adopters`) the nodes alive then; each
//! session is one node's of that list by a stable hash of its client id
//! ([`adopter_of`]: rendezvous hashing, the same answer on every node).
//! Each adopter sees the list at its next renewal round
//! (`job::take_over`), adopts its share on a thread of its own under the
//! janitor's fencing (`ADOPT`: only the orphan a janitor made, with its own
//! name and a fresh token; `adopt.rs`), waits until its writer wrote their
//! routes, and says so in the job record (`adopted:<node>` = `done`). The
//! janitor adopts its own share, waits for the others (bounded: an adopter
//! that died, or is slower than two leases and 10 s, has its share marked
//! `revoked`, so a late `done` is not taken for one in time), and adopts
//! whatever is still an orphan of the shares not done. Only then does the
//! replay run: every adopter (done, or still alive) gets each replayed
//! message for the dead node's client ids, whatever the janitor's route
//! cache knows of its routes yet, and the dead node's routes go after.
//!
//! A janitor taking the job over finds the list recorded and does the
//! same (the dead janitor's share is among those not done).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::link::Link;
use crate::wire::unix_ms;
use crate::{ClusterError, Shared, adopt};

/// The job record's field listing the adopters (space-separated).
const ADOPTERS: &str = "adopters";
/// An adopter's share is adopted and its routes written.
const DONE: &str = "done";
/// The janitor stopped waiting for an adopter's share.
const REVOKED: &str = "revoked";
/// How often the janitor looks for the adopters' answers.
const POLL: Duration = Duration::from_millis(50);

/// The job record's field for `node`'s share.
fn share_field(node: &str) -> String {
    format!("adopted:{node}")
}

/// The adopter of `client_id` among `nodes`: the node with the highest
/// hash of (node, client id). Stable (FNV-1a, no per-process seed) and
/// spread evenly; a node missing from the list moves only its own share.
pub(crate) fn adopter_of<'n>(client_id: &str, nodes: &'n [String]) -> Option<&'n str> {
    nodes
        .iter()
        .max_by_key(|node| (score(node, client_id), node.as_str()))
        .map(String::as_str)
}

fn score(node: &str, client_id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in node.bytes().chain([0xff]).chain(client_id.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // FNV's low bits mix poorly over short inputs: a finaliser (splitmix64).
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The janitor's adoption step for dead `node` (its job): the adopters
/// recorded (or recorded now), this node's share adopted, the others'
/// waited for, what is left of the shares not done adopted here. Returns
/// how many sessions this node adopted.
pub(crate) fn adopt_spread(
    link: &mut Link,
    shared: &Shared,
    node: &str,
    clients: &[String],
) -> Result<usize, ClusterError> {
    let me = shared.options.node_id.as_str();
    let adopters = adopters(link, shared, node)?;
    let share = |of: &dyn Fn(&str) -> bool| -> Vec<String> {
        clients
            .iter()
            .filter(|c| adopter_of(c, &adopters).is_some_and(of))
            .cloned()
            .collect()
    };
    let mut adopted = adopt::adopt_sessions(link, shared, node, &share(&|a| a == me))?;
    // Done as any adopter's: a janitor taking the job over (or this one,
    // stale, before it sees the job is not its own) does not wait for it.
    link.run(|c| {
        redis::cmd("HSETNX")
            .arg(shared.keys.job_of(node))
            .arg(share_field(me))
            .arg(DONE)
            .query::<()>(c)
    })?;
    let others: Vec<String> = adopters.iter().filter(|a| *a != me).cloned().collect();
    let (done, _) = wait_for(link, shared, node, others)?;
    let rest = share(&|a| a != me && !done.contains(a));
    if !rest.is_empty() {
        adopted += adopt::adopt_sessions(link, shared, node, &rest)?;
    }
    if adopters.len() > 1 {
        tracing::info!(
            node,
            adopters = adopters.len(),
            done = done.len(),
            here = adopted,
            "a dead node's sessions adopted over the live nodes"
        );
    }
    Ok(adopted)
}

/// The other adopters of dead `node`'s sessions a replay forwards to: those
/// whose share is done, and those still alive (a share revoked as too slow
/// may still be parked there).
pub(crate) fn targets(
    link: &mut Link,
    shared: &Shared,
    node: &str,
) -> Result<Vec<String>, ClusterError> {
    let me = &shared.options.node_id;
    let job = shared.keys.job_of(node);
    let list: Option<String> = link.run(|c| redis::cmd("HGET").arg(&job).arg(ADOPTERS).query(c))?;
    let mut targets = Vec::new();
    for adopter in list.iter().flat_map(|l| l.split(' ')) {
        if adopter.is_empty() || adopter == me {
            continue;
        }
        let state: Option<String> = link.run(|c| {
            redis::cmd("HGET")
                .arg(&job)
                .arg(share_field(adopter))
                .query(c)
        })?;
        if state.as_deref() == Some(DONE) || alive(link, shared, adopter)? {
            targets.push(adopter.to_string());
        }
    }
    Ok(targets)
}

/// The adopters recorded in `node`'s job, or the live nodes (this one
/// included, the dead one not) recorded now.
fn adopters(link: &mut Link, shared: &Shared, node: &str) -> Result<Vec<String>, ClusterError> {
    let job = shared.keys.job_of(node);
    let recorded: Option<String> =
        link.run(|c| redis::cmd("HGET").arg(&job).arg(ADOPTERS).query(c))?;
    if let Some(list) = recorded {
        return Ok(list
            .split(' ')
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect());
    }
    let now = unix_ms(SystemTime::now());
    let mut live: Vec<String> = link.run(|c| {
        redis::cmd("ZRANGEBYSCORE")
            .arg(shared.keys.nodes())
            .arg(now)
            .arg("+inf")
            .query(c)
    })?;
    live.retain(|n| n != node);
    let me = &shared.options.node_id;
    if !live.contains(me) {
        live.push(me.clone());
    }
    live.sort();
    let list = live.join(" ");
    link.run(|c| {
        redis::cmd("HSET")
            .arg(&job)
            .arg(ADOPTERS)
            .arg(&list)
            .query::<()>(c)
    })?;
    Ok(live)
}

/// Whether `node`'s lease has not lapsed.
fn alive(link: &mut Link, shared: &Shared, node: &str) -> Result<bool, ClusterError> {
    let until = crate::lease::until(link, &shared.keys, node)?;
    let now = unix_ms(SystemTime::now()) as f64;
    Ok(until.is_some_and(|until| until >= now))
}

/// Waits (bounded) until every one of `others` says its share of `node`'s
/// sessions is done; one that died, or is still at it past the bound, has
/// its share revoked. Returns the adopters done and those revoked.
fn wait_for(
    link: &mut Link,
    shared: &Shared,
    node: &str,
    mut waiting: Vec<String>,
) -> Result<(HashSet<String>, Vec<String>), ClusterError> {
    let job = shared.keys.job_of(node);
    let deadline = Instant::now() + shared.options.lease * 2 + Duration::from_secs(10);
    let (mut done, mut revoked) = (HashSet::new(), Vec::new());
    while !waiting.is_empty() {
        let late = Instant::now() >= deadline || shared.stop.is_stopped();
        let mut still = Vec::new();
        for adopter in waiting {
            let field = share_field(&adopter);
            let state: Option<String> =
                link.run(|c| redis::cmd("HGET").arg(&job).arg(&field).query(c))?;
            match state.as_deref() {
                Some(DONE) => {
                    done.insert(adopter);
                }
                Some(_) => revoked.push(adopter),
                None if late || !alive(link, shared, &adopter)? => {
                    // Set only if it did not answer meanwhile.
                    let set: i64 = link.run(|c| {
                        redis::cmd("HSETNX")
                            .arg(&job)
                            .arg(&field)
                            .arg(REVOKED)
                            .query(c)
                    })?;
                    if set == 1 {
                        tracing::warn!(
                            node,
                            %adopter,
                            "an adopter of a dead node's sessions did not answer in time; its share is adopted here"
                        );
                        revoked.push(adopter);
                    } else {
                        still.push(adopter); // answered: read again
                    }
                }
                None => still.push(adopter),
            }
        }
        waiting = still;
        if !waiting.is_empty() && shared.stop.pause(POLL) {
            break;
        }
    }
    Ok((done, revoked))
}

/// A renewal round of a node that is not `node`'s janitor: if the janitor
/// listed this node among the adopters of `node`'s sessions and its share
/// is not done, it is adopted on a thread of its own (loading sessions
/// blocks; the lease renewal must not wait for it). One that fails is
/// tried again at the next round.
pub(crate) fn look(link: &mut Link, shared: &Arc<Shared>, node: &str) -> Result<(), ClusterError> {
    let me = shared.options.node_id.clone();
    if shared.adopting.lock().contains(node) {
        return Ok(());
    }
    let job = shared.keys.job_of(node);
    let (list, state, inc): (Option<String>, Option<String>, Option<u64>) = link.run(|c| {
        redis::cmd("HMGET")
            .arg(&job)
            .arg(ADOPTERS)
            .arg(share_field(&me))
            .arg("inc")
            .query(c)
    })?;
    let (Some(list), None, Some(inc)) = (list, state, inc) else {
        return Ok(());
    };
    let adopters: Vec<String> = list
        .split(' ')
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    if !adopters.contains(&me) {
        return Ok(());
    }
    shared.adopting.lock().insert(node.to_string());
    let (shared, mut link, node) = (Arc::clone(shared), link.sibling(), node.to_string());
    let spawned = std::thread::Builder::new()
        .name("roost-cluster-a".into())
        .spawn(move || {
            if let Err(e) = take_share(&mut link, &shared, &node, inc, &adopters) {
                tracing::warn!(%node, error = %e, "adopting this node's share of a dead node's sessions failed; retried at a later renewal");
            }
            shared.adopting.lock().remove(&node);
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the adoption thread; the janitor adopts this node's share");
    }
    Ok(())
}

/// Adopts this node's share of dead `node`'s sessions (the job's list set
/// aside at incarnation `inc`), then says it is done.
fn take_share(
    link: &mut Link,
    shared: &Shared,
    node: &str,
    inc: u64,
    adopters: &[String],
) -> Result<(), ClusterError> {
    let me = shared.options.node_id.as_str();
    let clients: Vec<String> = link.run(|c| {
        redis::cmd("SMEMBERS")
            .arg(shared.keys.sessions_aside(node, inc))
            .query(c)
    })?;
    let mine: Vec<String> = clients
        .into_iter()
        .filter(|c| adopter_of(c, adopters) == Some(me))
        .collect();
    // Their routes are written before this returns (`adopt.rs`).
    let adopted = adopt::adopt_sessions(link, shared, node, &mine)?;
    let set: i64 = link.run(|c| {
        redis::cmd("HSETNX")
            .arg(shared.keys.job_of(node))
            .arg(share_field(me))
            .arg(DONE)
            .query(c)
    })?;
    if set == 1 {
        tracing::info!(
            %node,
            sessions = adopted,
            "this node's share of a dead node's sessions adopted"
        );
    } else {
        tracing::warn!(%node, sessions = adopted, "this node's share of a dead node's sessions was adopted after the janitor stopped waiting for it");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_client_has_one_adopter_and_the_shares_are_even() {
        let nodes: Vec<String> = ["b", "c"].map(str::to_string).to_vec();
        let mut counts = [0usize; 2];
        for i in 0..1000 {
            let id = format!("client-{i}");
            let a = adopter_of(&id, &nodes).unwrap();
            assert_eq!(adopter_of(&id, &nodes), Some(a), "stable");
            counts[usize::from(a == "c")] += 1;
        }
        assert!(counts.iter().all(|n| *n > 400), "{counts:?}");
        assert_eq!(adopter_of("x", &[]), None);
    }

    #[test]
    fn a_node_leaving_the_list_moves_only_its_own_share() {
        let three: Vec<String> = ["a", "b", "c"].map(str::to_string).to_vec();
        let two: Vec<String> = ["a", "b"].map(str::to_string).to_vec();
        for i in 0..500 {
            let id = format!("client-{i}");
            let before = adopter_of(&id, &three).unwrap();
            if before != "c" {
                assert_eq!(adopter_of(&id, &two), Some(before));
            }
        }
    }
}
