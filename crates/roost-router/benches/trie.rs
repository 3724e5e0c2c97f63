//! Router benchmarks: route latency with 1k / 100k / 1M subscriptions, a
//! 1k-subscriber fan-out, and subscribe throughput.
//!
//! Run: `cargo bench -p roost-router --bench trie -- --warm-up-time 1 --measurement-time 3`
//!
//! Memory per subscription is estimated from the resident-set delta
//! (`/proc/self/statm`) while building each router, and printed to stderr.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use roost_codec::{QoS, SubscriptionOptions};
use roost_router::{Router, SharedStrategy, Subscription, Target};

const METRICS: [&str; 4] = ["temp", "humidity", "pressure", "battery"];
const DEVICES_PER_SITE: usize = 100;

fn sub(qos: QoS) -> Subscription {
    Subscription {
        options: SubscriptionOptions {
            qos,
            ..SubscriptionOptions::default()
        },
        identifier: None,
    }
}

/// Filter number `i`: 70% literal, 20% `+` at the metric level, 10%
/// wildcard-heavy (`site/s/+/d/#`, and every 100th `site/s/#`).
fn filter(i: usize) -> String {
    let site = i / (DEVICES_PER_SITE * METRICS.len());
    let device = (i / METRICS.len()) % DEVICES_PER_SITE;
    let metric = METRICS[i % METRICS.len()];
    match i % 10 {
        0..=6 => format!("site/{site}/device/{device}/{metric}"),
        7 | 8 => format!("site/{site}/device/{device}/+"),
        _ if i % 100 == 9 => format!("site/{site}/#"),
        _ => format!("site/{site}/+/{device}/#"),
    }
}

/// Topics spread over the sites that have subscribers.
fn topics(subscriptions: usize, count: usize) -> Vec<String> {
    let sites = subscriptions
        .div_ceil(DEVICES_PER_SITE * METRICS.len())
        .max(1);
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let r = usize::try_from(state % (1 << 30)).unwrap_or(0);
            let site = r % sites;
            let device = (r / sites) % DEVICES_PER_SITE;
            let metric = METRICS[(r / 7) % METRICS.len()];
            format!("site/{site}/device/{device}/{metric}")
        })
        .collect()
}

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn build(subscriptions: usize) -> Router<u32> {
    let before = resident_bytes();
    let mut router = Router::new(SharedStrategy::RoundRobin);
    for i in 0..subscriptions {
        let qos = QoS::from_u8(u8::try_from(i % 3).unwrap_or(0)).unwrap_or_default();
        router.subscribe(
            u32::try_from(i).unwrap_or(u32::MAX),
            &filter(i),
            None,
            sub(qos),
            0,
        );
    }
    if let (Some(before), Some(after)) = (before, resident_bytes()) {
        let per = after.saturating_sub(before) as f64 / subscriptions as f64;
        eprintln!(
            "router with {subscriptions} subscriptions: {} trie nodes, RSS delta {:.1} MiB = {per:.0} bytes/subscription",
            router.node_count(),
            after.saturating_sub(before) as f64 / (1024.0 * 1024.0),
        );
    }
    router
}

fn route(c: &mut Criterion) {
    let mut group = c.benchmark_group("route");
    for subscriptions in [1_000, 100_000, 1_000_000] {
        let router = build(subscriptions);
        let topics = topics(subscriptions, 4096);
        let mut out: Vec<Target<u32>> = Vec::with_capacity(64);
        let mut matched = 0usize;
        for t in &topics {
            out.clear();
            router.route(t, None, "publisher", &mut out);
            matched += out.len();
        }
        eprintln!(
            "  {subscriptions}: {:.2} targets per routed topic",
            matched as f64 / topics.len() as f64
        );
        let mut next = 0usize;
        group.bench_function(BenchmarkId::from_parameter(subscriptions), |b| {
            b.iter(|| {
                next = (next + 1) % topics.len();
                out.clear();
                router.route(black_box(&topics[next]), None, "publisher", &mut out);
                black_box(out.len())
            })
        });
    }

    // Fan-out: 1,000 subscribers on one topic, half of them through two
    // overlapping filters (exercises the dedup index).
    let mut fan = Router::new(SharedStrategy::RoundRobin);
    for key in 0..1_000u32 {
        fan.subscribe(key, "news/+", None, sub(QoS::AtLeastOnce), 0);
        if key % 2 == 0 {
            fan.subscribe(key, "news/#", None, sub(QoS::AtMostOnce), 0);
        }
    }
    let mut out: Vec<Target<u32>> = Vec::with_capacity(1_024);
    group.bench_function("fanout_1k", |b| {
        b.iter(|| {
            out.clear();
            fan.route(black_box("news/today"), None, "publisher", &mut out);
            black_box(out.len())
        })
    });
    group.finish();
}

fn subscribe(c: &mut Criterion) {
    const BATCH: usize = 10_000;
    let filters: Vec<String> = (0..BATCH).map(filter).collect();
    let mut group = c.benchmark_group("subscribe");
    group.sample_size(20);
    group.throughput(criterion::Throughput::Elements(BATCH as u64));
    group.bench_function("10k_into_empty", |b| {
        b.iter_with_large_drop(|| {
            let mut router = Router::new(SharedStrategy::RoundRobin);
            for (i, f) in filters.iter().enumerate() {
                router.subscribe(
                    u32::try_from(i).unwrap_or(0),
                    f,
                    None,
                    sub(QoS::AtLeastOnce),
                    0,
                );
            }
            router
        })
    });
    group.finish();
}

criterion_group!(benches, route, subscribe);
criterion_main!(benches);
