//! The reader thread: one blocking `XREAD` over this node's inbox, the
//! route log, the retained log and the ban log (on a Redis Cluster, one
//! thread per stream: see [`Cursors::split`]). Inbox batches go to the broker's
//! [`Receiver`](crate::Receiver), which routes them to local subscribers
//! only; log entries update the route cache and the retained copy.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::batch;
use crate::dedupe::Seen;
use crate::link::Link;
use crate::wire::{self, DATA, Entry, Handed, KIND, Kick, RetainedBlob, TOPIC};
use crate::{BanChange, RetainedUpdate, Shared};

/// How long one `XREAD` blocks (the thread notices a stop this often).
const BLOCK: Duration = Duration::from_millis(500);
/// Entries per stream per read.
const COUNT: usize = 512;
/// How often the inbox is trimmed to what was read.
const TRIM_EVERY: Duration = Duration::from_secs(1);

/// Where each stream was read up to.
pub(crate) struct Cursors {
    pub(crate) inbox: String,
    pub(crate) routes: String,
    pub(crate) retained: String,
    pub(crate) bans: String,
}

/// The streams a node reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    Inbox,
    Routes,
    Retained,
    Bans,
}

impl Cursors {
    /// The streams per reader thread: all four in one `XREAD` on one
    /// server; on a Redis Cluster one thread per stream, since each stream
    /// has a hash tag of its own (a slot, perhaps a primary, of its own) and
    /// one `XREAD` may only name keys of one slot. Each thread blocks on its
    /// stream alone, so no stream waits for another's timeout.
    pub(crate) fn split(self, per_slot: bool) -> Vec<Vec<(Stream, String)>> {
        let all = vec![
            (Stream::Inbox, self.inbox),
            (Stream::Routes, self.routes),
            (Stream::Retained, self.retained),
            (Stream::Bans, self.bans),
        ];
        if per_slot {
            all.into_iter().map(|one| vec![one]).collect()
        } else {
            vec![all]
        }
    }
}

pub(crate) fn run(shared: Arc<Shared>, mut link: Link, streams: Vec<(Stream, String)>) {
    let keys = &shared.keys;
    let inbox = keys.inbox_of(&shared.options.node_id);
    let names: Vec<String> = streams
        .iter()
        .map(|(stream, _)| match stream {
            Stream::Inbox => inbox.clone(),
            Stream::Routes => keys.route_log(),
            Stream::Retained => keys.retained_log(),
            Stream::Bans => keys.ban_log(),
        })
        .collect();
    let mut at: Vec<String> = streams.iter().map(|(_, id)| id.clone()).collect();
    // How many entries the route log had received up to this node's cursor
    // (gap.rs); from the load at start.
    let mut routes = shared.route_log_added.load(Ordering::Relaxed);
    let inbox_at = streams.iter().position(|(s, _)| *s == Stream::Inbox);
    let mut trimmed = Instant::now();
    let mut trimmed_to = String::new();
    let checkpoint = keys.checkpoint_of(&shared.options.node_id);
    let mut seen = Seen::default();
    let mut backoff = Duration::from_millis(50);
    while !shared.stop.is_stopped() {
        let read = link.run_blocking(BLOCK, |c| {
            redis::cmd("XREAD")
                .arg("COUNT")
                .arg(COUNT)
                .arg("BLOCK")
                .arg(u64::try_from(BLOCK.as_millis()).unwrap_or(500))
                .arg("STREAMS")
                .arg(&names)
                .arg(&at)
                .query::<redis::Value>(c)
        });
        let reply = match read {
            Ok(reply) => {
                backoff = Duration::from_millis(50);
                reply
            }
            Err(e) => {
                tracing::warn!(error = %e, "cluster read failed; retrying");
                if shared.stop.pause(backoff) {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        for (key, entries) in wire::xread(reply) {
            let Some(last) = entries.last().map(|e| e.id.clone()) else {
                continue;
            };
            let Some(i) = names.iter().position(|n| *n == key) else {
                continue;
            };
            match streams[i].0 {
                // Inbox entries are moved: their payloads stay slices of the reply.
                Stream::Inbox => {
                    entries
                        .into_iter()
                        .for_each(|e| inbox_entry(&shared, e, &mut seen));
                    // Durable mode: the checkpoint passes these entries only
                    // once the sessions' queue rows they made are in Redis.
                    shared.receiver.settle();
                }
                // Further behind than the log's cap: rebuilt instead (gap.rs).
                Stream::Routes => {
                    match crate::gap::check(&mut link, &shared, &names[i], &mut routes, &entries) {
                        Ok(Some(from)) => {
                            at[i] = from;
                            continue;
                        }
                        Ok(None) => entries.iter().for_each(|e| shared.routes.apply(e)),
                        // Read again next round (the cursor stays).
                        Err(e) => {
                            tracing::warn!(error = %e, "cluster route log check failed");
                            continue;
                        }
                    }
                }
                Stream::Retained => entries.iter().for_each(|e| retained_entry(&shared, e)),
                Stream::Bans => entries.iter().for_each(|e| ban_entry(&shared, e)),
            }
            at[i] = last;
        }
        // This node alone reads its inbox: what it handled can go, and the
        // checkpoint says where a handoff would start if this node died.
        // Producers' MAXLEN is only the cap for a reader that stopped.
        let Some(read_to) = inbox_at.map(|i| &at[i]) else {
            continue;
        };
        if trimmed.elapsed() >= TRIM_EVERY && *read_to != trimmed_to && read_to != "0-0" {
            let minid = read_to.clone();
            let trim = link.run(|c| {
                redis::pipe()
                    .cmd("XTRIM")
                    .arg(&inbox)
                    .arg("MINID")
                    .arg(&minid)
                    .ignore()
                    .set(&checkpoint, &minid)
                    .ignore()
                    .query::<()>(c)
            });
            if trim.is_ok() {
                trimmed_to = minid;
            }
            trimmed = Instant::now();
        }
    }
}

fn inbox_entry(shared: &Shared, mut entry: Entry, seen: &mut Seen) {
    let Some(data) = entry.take(DATA) else {
        return;
    };
    let origin = entry.text(wire::ORIGIN).unwrap_or("?");
    match entry.text(KIND) {
        Some("m") => {
            if let Some((origin, incarnation, seq)) = entry.batch_header()
                && !seen.fresh(origin, incarnation, seq)
            {
                shared.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    origin,
                    incarnation,
                    seq,
                    "cluster batch seen before; dropped"
                );
                return;
            }
            messages(shared, origin, data);
        }
        Some("x") => match wire::decode::<Kick>(&data) {
            Ok(kick) => {
                shared.stats.kicks.fetch_add(1, Ordering::Relaxed);
                shared.receiver.kick(crate::Kicked {
                    client_id: kick.client_id,
                    token: kick.token,
                    new_token: kick.new_token,
                    to: kick.to,
                    resume: kick.resume,
                });
            }
            Err(e) => tracing::warn!(origin, error = %e, "undecodable cluster kick skipped"),
        },
        Some("h") => match wire::decode::<Handed>(&data) {
            Ok(handed) => {
                let waiter = shared.handovers.lock().remove(&handed.new_token);
                if let Some(waiter) = waiter {
                    waiter.complete(Ok(()));
                } else {
                    tracing::debug!(client_id = %handed.client_id, "handover answer after its wait ended");
                }
            }
            Err(e) => tracing::warn!(origin, error = %e, "undecodable handover answer skipped"),
        },
        other => tracing::warn!(origin, kind = ?other, "unknown cluster inbox entry skipped"),
    }
}

/// Hands a batch's messages to the broker as they are decoded; topics and
/// payloads stay in the reply's buffer (batch.rs).
fn messages(shared: &Shared, origin: &str, data: Vec<u8>) {
    let data = Bytes::from(data);
    let mut decoded = Ok(0);
    shared
        .receiver
        .messages_each(&mut |each| decoded = batch::decode_each(&data, each));
    match decoded {
        Ok(n) => {
            shared.stats.received.fetch_add(n as u64, Ordering::Relaxed);
        }
        Err(e) => {
            tracing::warn!(origin, error = %e, "undecodable cluster batch: the rest of it skipped")
        }
    }
}

/// Applies a retained log entry: every node, the writer included, applies
/// every entry in log order, so all copies end equal to the last change.
pub(crate) fn retained_entry(shared: &Shared, entry: &Entry) {
    let Some(topic) = entry.text(TOPIC) else {
        return;
    };
    match entry.field(DATA) {
        None => shared.receiver.retained(RetainedUpdate::Clear {
            topic: topic.to_string(),
        }),
        Some(data) => match wire::decode::<RetainedBlob>(data) {
            Ok(blob) => shared.receiver.retained(RetainedUpdate::Set {
                stored_at: wire::from_unix_ms(blob.stored_at_ms),
                message: Box::new(blob.message),
            }),
            Err(e) => tracing::warn!(topic, error = %e, "undecodable retained message skipped"),
        },
    }
}

/// Applies a ban log entry (field `t` the target, `d` its end in unix ms,
/// `0` never; no `d`: lifted).
fn ban_entry(shared: &Shared, entry: &Entry) {
    let Some(target) = entry.text(TOPIC) else {
        return;
    };
    let until = match entry.text(DATA) {
        None => None,
        Some(ms) => match ms.parse::<u64>() {
            Ok(ms) => Some(wire::ban_end(ms)),
            Err(_) => {
                tracing::warn!(target, "undecodable ban change skipped");
                return;
            }
        },
    };
    shared.receiver.ban(BanChange {
        target: target.to_string(),
        until,
    });
}
