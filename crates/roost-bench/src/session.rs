//! A connected client that reads: it answers pings, acknowledges QoS 1/2
//! deliveries, accounts every received message (sequence, latency) and
//! notices its SUBACK. Idle clients (`conn`), subscribers and publishers
//! waiting for the run phase all use this loop.

use std::num::NonZeroU16;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::{Context, bail};
use bytes::BytesMut;
use roost_codec::{Packet, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::client::{self, Connection};
use crate::clock::now_ns;
use crate::latency::SharedHist;
use crate::payload::PayloadHeader;
use crate::phase::{Control, Phase, Progress, Window};
use crate::seq::{Arrival, SeqBook};
use crate::stats::RecvStats;
use crate::transport;

/// Read more once fewer than this many bytes are free in the read buffer.
const MIN_SPARE: usize = 2 * 1024;

/// Per-client receive accounting; latency samples go to a shared histogram
/// once per read batch.
#[derive(Debug)]
pub struct RecvAccount {
    book: SeqBook,
    pending: Vec<u64>,
    window: Option<Window>,
    stats: RecvStats,
    hist: SharedHist,
    progress: Arc<Progress>,
    new_unique: u64,
    /// Receives since the last flush (for the per-second progress line).
    new_received: u64,
}

impl RecvAccount {
    /// An empty account reporting into `hist` and `progress`.
    pub fn new(hist: SharedHist, progress: Arc<Progress>) -> Self {
        Self {
            book: SeqBook::default(),
            pending: Vec::new(),
            window: None,
            stats: RecvStats::default(),
            hist,
            progress,
            new_unique: 0,
            new_received: 0,
        }
    }

    /// Sets the measurement window once the run phase starts.
    pub fn set_window(&mut self, window: Window) {
        self.window = Some(window);
    }

    /// Accounts one received payload at `now_ns`.
    pub fn on_publish(&mut self, payload: &[u8], now_ns: u64) {
        self.stats.received += 1;
        self.new_received += 1;
        self.stats.last_ns = now_ns;
        let window = self.window;
        if window.is_some_and(|w| w.measures(now_ns)) {
            self.stats.received_window += 1;
        }
        let Some(header) = PayloadHeader::read(payload) else {
            self.stats.foreign += 1;
            return;
        };
        let Some(latency) = header.latency_ns(now_ns) else {
            self.stats.foreign += 1;
            return;
        };
        if self.book.observe(header.publisher, header.seq) != Arrival::Duplicate {
            self.new_unique += 1;
        }
        // Latency counts messages *sent* in the measured window.
        if window.is_some_and(|w| w.measures(header.sent_ns)) {
            self.pending.push(latency);
        }
    }

    /// Publishes the batch's samples and progress.
    pub fn flush(&mut self) {
        self.hist.add_batch(&self.pending);
        self.pending.clear();
        if self.new_received > 0 {
            self.progress
                .received
                .fetch_add(self.new_received, Ordering::Relaxed);
            self.new_received = 0;
        }
        if self.new_unique > 0 {
            self.progress
                .unique
                .fetch_add(self.new_unique, Ordering::Relaxed);
            self.progress
                .last_recv_ns
                .fetch_max(self.stats.last_ns, Ordering::Relaxed);
            self.progress.notify.notify_waiters();
            self.new_unique = 0;
        }
    }

    /// Final totals.
    pub fn finish(mut self) -> RecvStats {
        self.flush();
        RecvStats {
            clients: 1,
            seq: self.book.counts(),
            ..self.stats
        }
    }
}

/// A reading client.
#[derive(Debug)]
pub struct Session {
    /// The connection.
    pub conn: Connection,
    /// Receive accounting.
    pub account: RecvAccount,
    wbuf: BytesMut,
    ping_every: Option<std::time::Duration>,
    next_ping: Instant,
    awaiting_suback: Option<(NonZeroU16, u64)>,
    suback: Option<(u64, bool)>,
}

/// When `serve` returns.
#[derive(Debug, Clone, Copy)]
pub enum Until {
    /// When the phase satisfies the predicate.
    Phase(fn(&Phase) -> bool),
    /// When the awaited SUBACK has arrived.
    SubAck,
}

impl Session {
    /// Wraps an established connection.
    pub fn new(conn: Connection, account: RecvAccount) -> Self {
        let ping_every = client::ping_interval(conn.keepalive);
        Self {
            conn,
            account,
            wbuf: BytesMut::new(),
            next_ping: Instant::now() + ping_every.unwrap_or_default(),
            ping_every,
            awaiting_suback: None,
            suback: None,
        }
    }

    /// Sends a SUBSCRIBE; `serve(Until::SubAck)` then waits for its SUBACK.
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> anyhow::Result<()> {
        let packet_id = NonZeroU16::MIN;
        client::encode_subscribe(&self.conn.encoder, packet_id, filter, qos, &mut self.wbuf)?;
        self.awaiting_suback = Some((packet_id, now_ns()));
        self.flush_writes().await
    }

    /// The SUBACK outcome: (latency in ns, granted), once it has arrived.
    pub fn suback(&self) -> Option<(u64, bool)> {
        self.suback
    }

    /// Reads and handles packets until `until` holds.
    pub async fn serve(&mut self, ctl: &mut Control, until: Until) -> anyhow::Result<()> {
        loop {
            match until {
                Until::Phase(done) => {
                    let phase = *ctl.phase.borrow_and_update();
                    if let Phase::Run(window) = phase {
                        self.account.set_window(window);
                    }
                    if done(&phase) {
                        return Ok(());
                    }
                }
                Until::SubAck => {
                    if self.suback.is_some() {
                        return Ok(());
                    }
                    if ctl.stopping() {
                        bail!("stopped before the SUBACK arrived");
                    }
                }
            }
            if self.conn.rbuf.capacity() - self.conn.rbuf.len() < MIN_SPARE {
                self.conn.rbuf.reserve(self.conn.read_buffer);
            }
            let ping_at = self.next_ping;
            let pings = self.ping_every.is_some();
            tokio::select! {
                changed = ctl.phase.changed() => {
                    if changed.is_err() {
                        // The orchestrator is gone: treat as stop.
                        return Ok(());
                    }
                }
                read = self.conn.stream.read_buf(&mut self.conn.rbuf) => {
                    if read.context("read")? == 0 {
                        bail!("the broker closed the connection");
                    }
                    self.handle_input()?;
                    self.flush_writes().await?;
                }
                () = tokio::time::sleep_until(ping_at), if pings => {
                    client::encode_pingreq(&self.conn.encoder, &mut self.wbuf)?;
                    self.next_ping = Instant::now() + self.ping_every.unwrap_or_default();
                    self.flush_writes().await?;
                }
            }
        }
    }

    fn handle_input(&mut self) -> anyhow::Result<()> {
        let now = now_ns();
        while let Some(packet) = self.conn.decoder.decode(&mut self.conn.rbuf)? {
            match packet {
                Packet::Publish(publish) => {
                    self.account.on_publish(&publish.payload, now);
                    match (publish.qos, publish.packet_id) {
                        (QoS::AtLeastOnce, Some(id)) => client::encode_ack(
                            &self.conn.encoder,
                            id,
                            Packet::PubAck,
                            &mut self.wbuf,
                        )?,
                        (QoS::ExactlyOnce, Some(id)) => client::encode_ack(
                            &self.conn.encoder,
                            id,
                            Packet::PubRec,
                            &mut self.wbuf,
                        )?,
                        _ => {}
                    }
                }
                Packet::PubRel(rel) => client::encode_ack(
                    &self.conn.encoder,
                    rel.packet_id,
                    Packet::PubComp,
                    &mut self.wbuf,
                )?,
                Packet::SubAck(ack) => {
                    if let Some((id, sent)) = self.awaiting_suback
                        && id == ack.packet_id
                    {
                        let granted = ack.reason_codes.iter().all(|rc| !rc.is_error());
                        self.suback = Some((now.saturating_sub(sent), granted));
                        self.awaiting_suback = None;
                    }
                }
                Packet::PingResp => {}
                Packet::Disconnect(d) => bail!("the broker sent DISCONNECT ({})", d.reason_code),
                other => bail!("unexpected {:?} from the broker", other.packet_type()),
            }
        }
        self.account.flush();
        Ok(())
    }

    async fn flush_writes(&mut self) -> anyhow::Result<()> {
        if !self.wbuf.is_empty() {
            transport::send(&mut self.conn.stream, &self.wbuf)
                .await
                .context("write")?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Sends DISCONNECT and closes; errors are ignored (the run is over).
    pub async fn close(mut self) -> RecvStats {
        if client::encode_disconnect(&self.conn.encoder, &mut self.wbuf).is_ok() {
            let _ = self.flush_writes().await;
        }
        let _ = self.conn.stream.shutdown().await;
        self.account.finish()
    }
}
