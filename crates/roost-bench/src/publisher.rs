//! The publishing half of a client: pre-encoded messages written in batches,
//! paced open-loop (each message has a due time; a late publisher catches up
//! instead of silently lowering the offered load) or as fast as the socket
//! takes them. QoS 1/2 publishers keep at most `inflight` messages
//! unacknowledged; a separate task reads the acknowledgements.

use std::num::NonZeroU16;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::BytesMut;
use roost_codec::{Decoder, Encoder, Packet, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Mutex, Semaphore};

use crate::client::{self, READ_BUFFER};
use crate::clock::{instant_at, now_ns};
use crate::pacing::{PaceRecorder, due_at, due_by};
use crate::payload::PayloadHeader;
use crate::phase::{Control, Window};
use crate::session::Session;
use crate::stats::PubStats;
use crate::template::PublishTemplate;
use crate::transport::{self, ReadHalf, WriteHalf};

/// Bytes per write when publishing as fast as possible: enough messages per
/// syscall to amortise it, small enough to keep latency samples honest.
const BATCH_BYTES: usize = 16 * 1024;

/// What one publisher publishes and how fast.
#[derive(Debug, Clone)]
pub struct PublishPlan {
    /// Global publisher index, written into every payload.
    pub publisher: u32,
    /// The encoded message.
    pub template: PublishTemplate,
    /// QoS of the messages.
    pub qos: QoS,
    /// Time between two messages, nanoseconds; 0 = as fast as possible.
    pub interval_ns: u64,
    /// Delay of this publisher's schedule, so publishers do not all fire together.
    pub offset_ns: u64,
    /// Messages to publish at most (`u64::MAX` = no limit).
    pub limit: u64,
    /// QoS 1/2 messages allowed unacknowledged.
    pub inflight: u16,
    /// How long to wait for outstanding acknowledgements at the end.
    pub drain: Duration,
}

/// Acknowledgements read by the ack task.
#[derive(Debug, Default, Clone, Copy)]
struct AckCounts {
    acked: u64,
    rejected: u64,
}

/// Publishes according to `plan` within `window`, then disconnects. The
/// counters are returned even when the connection failed part way, so that
/// what was sent still counts towards the expected deliveries.
pub async fn publish(
    session: Session,
    plan: PublishPlan,
    window: Window,
    ctl: &mut Control,
) -> (PubStats, anyhow::Result<()>) {
    let conn = session.conn;
    let encoder = conn.encoder;
    let window_size = if plan.qos == QoS::AtMostOnce {
        0
    } else {
        plan.inflight.min(conn.receive_maximum).max(1)
    };
    let ping_every = client::ping_interval(conn.keepalive);
    let (rd, wr) = conn.stream.into_split();
    let writer = Arc::new(Mutex::new(wr));
    let permits = Arc::new(Semaphore::new(usize::from(window_size)));
    let acks = tokio::spawn(read_acks(
        rd,
        conn.decoder,
        conn.rbuf,
        encoder,
        Arc::clone(&writer),
        Arc::clone(&permits),
    ));

    let mut stats = PubStats {
        clients: 1,
        ..PubStats::default()
    };
    let outcome = write_loop(
        &plan,
        &encoder,
        window,
        ctl,
        (&writer, &permits),
        ping_every,
        &mut stats,
    )
    .await;
    ctl.report(crate::phase::Event::PublisherDone { sent: stats.sent });

    // Wait for the acknowledgements of what is still in flight (not after
    // a write failure: the connection is gone).
    if window_size > 0 && outcome.is_ok() {
        let all = u32::from(window_size);
        if let Ok(Ok(held)) = tokio::time::timeout(plan.drain, permits.acquire_many(all)).await {
            drop(held);
        }
        stats.unacked = u64::from(window_size).saturating_sub(permits.available_permits() as u64);
    }
    {
        let mut out = BytesMut::new();
        let mut wr = writer.lock().await;
        if client::encode_disconnect(&encoder, &mut out).is_ok() {
            let _ = transport::send(&mut *wr, &out).await;
        }
        let _ = wr.shutdown().await;
    }
    // The broker closes after DISCONNECT; do not wait for a slow one forever.
    match tokio::time::timeout(Duration::from_secs(5), acks).await {
        Ok(Ok(Ok(counts))) => {
            stats.acked = counts.acked;
            stats.rejected = counts.rejected;
        }
        Ok(Ok(Err(e))) if outcome.is_ok() => return (stats, Err(e)),
        _ => {}
    }
    (stats, outcome)
}

async fn write_loop(
    plan: &PublishPlan,
    encoder: &Encoder,
    window: Window,
    ctl: &mut Control,
    (writer, permits): (&Mutex<WriteHalf>, &Semaphore),
    ping_every: Option<Duration>,
    stats: &mut PubStats,
) -> anyhow::Result<()> {
    let paced = plan.interval_ns > 0;
    let batch_max = (BATCH_BYTES / plan.template.len().max(1)).max(1) as u64;
    let schedule_start = window.start_ns.saturating_add(plan.offset_ns);
    let limit = plan.limit;
    let uses_permits = plan.qos != QoS::AtMostOnce;
    let mut out = BytesMut::with_capacity(BATCH_BYTES + plan.template.len());
    let mut packet_id: u16 = 0;
    let mut last_write = now_ns();
    let ping_ns = ping_every.map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let pacer = ctl.pacer.clone();
    let mut pace = paced.then(|| PaceRecorder::new(Arc::clone(&ctl.pace)));

    while stats.sent < limit && !ctl.stopping() {
        let now = now_ns();
        if now >= window.end_ns {
            break;
        }
        let due = if paced {
            due_by(now, schedule_start, plan.interval_ns)
        } else {
            stats.sent + batch_max
        };
        let mut n = due.min(limit).saturating_sub(stats.sent).min(batch_max);
        if n == 0 {
            // Ahead of schedule: sleep until the next message is due (or a
            // ping is, or the run stops).
            let next_due = due_at(schedule_start, stats.sent, plan.interval_ns);
            let wake = match ping_ns {
                Some(p) => next_due.min(last_write.saturating_add(p)),
                None => next_due,
            }
            .min(window.end_ns);
            tokio::select! {
                () = pacer.sleep_until(wake) => {}
                _ = ctl.phase.changed() => {}
            }
            if let Some(p) = ping_ns
                && now_ns() >= last_write.saturating_add(p)
            {
                client::encode_pingreq(encoder, &mut out)?;
                transport::send(&mut *writer.lock().await, &out)
                    .await
                    .context("write PINGREQ")?;
                out.clear();
                last_write = now_ns();
            }
            continue;
        }
        if let Some(backlog) = &ctl.backlog {
            let room = match backlog.room() {
                0 => backlog.wait_for_room(window.end_ns).await,
                room => room,
            };
            n = n.min(room);
            if n == 0 {
                continue;
            }
        }
        if uses_permits {
            n = take_permits(permits, n, window, ctl).await;
            if n == 0 {
                continue;
            }
        }
        let sent_ns = now_ns();
        if paced {
            let scheduled = due_at(schedule_start, stats.sent, plan.interval_ns);
            stats.max_lag_ns = stats.max_lag_ns.max(sent_ns.saturating_sub(scheduled));
            if let Some(pace) = pace.as_mut()
                && window.measures(sent_ns)
            {
                pace.write(sent_ns, scheduled);
            }
        }
        for _ in 0..n {
            packet_id = packet_id.checked_add(1).unwrap_or(1);
            let id = NonZeroU16::new(packet_id).unwrap_or(NonZeroU16::MIN);
            let header = PayloadHeader {
                publisher: plan.publisher,
                seq: u32::try_from(stats.sent).unwrap_or(u32::MAX),
                sent_ns,
            };
            plan.template.append(&mut out, id, &header);
            stats.sent += 1;
        }
        if window.measures(sent_ns) {
            stats.sent_window += n;
        }
        if let Some(backlog) = &ctl.backlog {
            backlog.sent(n);
        }
        ctl.progress
            .sent
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        transport::send(&mut *writer.lock().await, &out)
            .await
            .context("write PUBLISH")?;
        out.clear();
        last_write = sent_ns;
        if !paced {
            // Let the other clients on this thread run between batches.
            tokio::task::yield_now().await;
        }
    }
    Ok(())
}

/// Takes up to `want` in-flight permits, waiting for at least one; 0 if the
/// run ends first.
async fn take_permits(permits: &Semaphore, want: u64, window: Window, ctl: &mut Control) -> u64 {
    let want = u32::try_from(want).unwrap_or(u32::MAX);
    let available = u32::try_from(permits.available_permits()).unwrap_or(u32::MAX);
    if available == 0 {
        tokio::select! {
            permit = permits.acquire() => match permit {
                Ok(p) => p.forget(),
                Err(_) => return 0,
            },
            () = tokio::time::sleep_until(instant_at(window.end_ns)) => return 0,
            _ = ctl.phase.changed() => return 0,
        }
        let more = (want - 1).min(u32::try_from(permits.available_permits()).unwrap_or(0));
        if more > 0
            && let Ok(p) = permits.try_acquire_many(more)
        {
            p.forget();
            return u64::from(more) + 1;
        }
        return 1;
    }
    let take = want.min(available);
    match permits.try_acquire_many(take) {
        Ok(p) => {
            p.forget();
            u64::from(take)
        }
        Err(_) => 0,
    }
}

/// Reads PUBACK / PUBREC / PUBCOMP, answers PUBREC with PUBREL, and returns
/// in-flight permits. Ends when the broker closes the connection.
async fn read_acks(
    mut rd: ReadHalf,
    mut decoder: Decoder,
    mut rbuf: BytesMut,
    encoder: Encoder,
    writer: Arc<Mutex<WriteHalf>>,
    permits: Arc<Semaphore>,
) -> anyhow::Result<AckCounts> {
    let mut counts = AckCounts::default();
    let mut out = BytesMut::new();
    loop {
        let mut released = 0usize;
        while let Some(packet) = decoder.decode(&mut rbuf)? {
            match packet {
                Packet::PubAck(ack) | Packet::PubComp(ack) => {
                    released += 1;
                    if ack.reason_code.is_error() {
                        counts.rejected += 1;
                    } else {
                        counts.acked += 1;
                    }
                }
                Packet::PubRec(rec) => {
                    if rec.reason_code.is_error() {
                        released += 1;
                        counts.rejected += 1;
                    } else {
                        client::encode_ack(&encoder, rec.packet_id, Packet::PubRel, &mut out)?;
                    }
                }
                Packet::PingResp => {}
                Packet::Disconnect(d) => bail!("the broker sent DISCONNECT ({})", d.reason_code),
                other => bail!("unexpected {:?} from the broker", other.packet_type()),
            }
        }
        if !out.is_empty() {
            transport::send(&mut *writer.lock().await, &out)
                .await
                .context("write PUBREL")?;
            out.clear();
        }
        permits.add_permits(released);
        if rbuf.capacity() - rbuf.len() < 1024 {
            rbuf.reserve(READ_BUFFER);
        }
        if rd.read_buf(&mut rbuf).await.context("read")? == 0 {
            return Ok(counts);
        }
    }
}
