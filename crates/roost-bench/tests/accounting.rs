//! The load generator's own bookkeeping: payload header encoding, the
//! pre-encoded PUBLISH, loss/duplicate/reorder accounting, result merging,
//! work slicing across processes and the command line. No timing assertions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::num::NonZeroU16;

use bytes::BytesMut;
use clap::Parser;
use roost_bench::latency::LatencyHist;
use roost_bench::pacing::wait_before;
use roost_bench::payload::{HEADER_LEN, PayloadHeader};
use roost_bench::plan::{Slice, expand_topic, share_of};
use roost_bench::procstat::{parse_cpu_ticks, parse_status_kb};
use roost_bench::raw::RawResult;
use roost_bench::seq::{Arrival, SeqBook, SeqCounts, SeqTracker};
use roost_bench::template::PublishTemplate;
use roost_bench::{BenchArgs, BenchCommand, TopicMode, child_args};
use roost_codec::{Decoder, Encoder, Packet, ProtocolVersion, QoS};

#[test]
fn payload_header_round_trips_big_endian() {
    let header = PayloadHeader {
        publisher: 0x0102_0304,
        seq: 0x0506_0708,
        sent_ns: 0x090A_0B0C_0D0E_0F10,
    };
    let mut payload = [0xFFu8; 20];
    assert!(header.write(&mut payload));
    assert_eq!(&payload[..HEADER_LEN], &(1u8..=16).collect::<Vec<_>>()[..]);
    assert_eq!(&payload[HEADER_LEN..], &[0xFF; 4], "padding is left alone");
    assert_eq!(PayloadHeader::read(&payload), Some(header));
}

#[test]
fn payload_shorter_than_the_header_carries_none() {
    let header = PayloadHeader {
        publisher: 1,
        seq: 2,
        sent_ns: 3,
    };
    let mut short = [0u8; HEADER_LEN - 1];
    assert!(!header.write(&mut short));
    assert_eq!(short, [0u8; HEADER_LEN - 1]);
    assert_eq!(PayloadHeader::read(&short), None);
}

#[test]
fn latency_rejects_timestamps_that_cannot_be_ours() {
    let header = PayloadHeader {
        publisher: 0,
        seq: 0,
        sent_ns: 1_000,
    };
    assert_eq!(header.latency_ns(1_500), Some(500));
    assert_eq!(header.latency_ns(999), None, "from the future");
    assert_eq!(
        header.latency_ns(1_000 + 3_601 * 1_000_000_000),
        None,
        "over an hour old"
    );
}

#[test]
fn in_order_stream_has_no_loss_dup_or_reorder() {
    let mut t = SeqTracker::default();
    for seq in 0..1_000 {
        assert_eq!(t.observe(seq), Arrival::InOrder);
    }
    assert_eq!(
        t.counts(),
        SeqCounts {
            unique: 1_000,
            duplicates: 0,
            reordered: 0,
            gaps: 0
        }
    );
}

#[test]
fn a_skipped_range_counts_as_gaps_until_it_arrives_late() {
    let mut t = SeqTracker::default();
    for seq in [0, 1, 5, 6] {
        t.observe(seq);
    }
    assert_eq!(t.counts().gaps, 3, "2, 3 and 4 are missing");
    assert_eq!(t.observe(3), Arrival::Reordered);
    assert_eq!(t.observe(2), Arrival::Reordered);
    let c = t.counts();
    assert_eq!(
        (c.unique, c.reordered, c.gaps),
        (6, 2, 1),
        "only 4 is still missing"
    );
    assert_eq!(t.observe(4), Arrival::Reordered);
    assert_eq!(t.counts().gaps, 0);
}

#[test]
fn a_repeated_message_is_a_duplicate_not_a_new_one() {
    let mut t = SeqTracker::default();
    t.observe(0);
    t.observe(1);
    assert_eq!(t.observe(1), Arrival::Duplicate);
    assert_eq!(t.observe(0), Arrival::Duplicate);
    t.observe(4);
    assert_eq!(t.observe(2), Arrival::Reordered);
    assert_eq!(
        t.observe(2),
        Arrival::Duplicate,
        "a filled gap cannot be filled twice"
    );
    let c = t.counts();
    assert_eq!((c.unique, c.duplicates, c.reordered, c.gaps), (4, 3, 1, 1));
}

#[test]
fn a_huge_gap_is_one_range_not_a_million_entries() {
    let mut t = SeqTracker::default();
    t.observe(0);
    t.observe(u32::MAX);
    assert_eq!(t.counts().gaps, u64::from(u32::MAX) - 1);
    assert_eq!(t.observe(1_000_000), Arrival::Reordered);
    assert_eq!(t.counts().gaps, u64::from(u32::MAX) - 2);
}

#[test]
fn the_book_keeps_publishers_apart() {
    let mut book = SeqBook::default();
    assert_eq!(book.observe(1, 0), Arrival::InOrder);
    assert_eq!(
        book.observe(2, 0),
        Arrival::InOrder,
        "same seq, other publisher"
    );
    assert_eq!(book.observe(1, 0), Arrival::Duplicate);
    book.observe(2, 2);
    let c = book.counts();
    assert_eq!((c.unique, c.duplicates, c.gaps), (3, 1, 1));
}

#[test]
fn publish_template_patches_packet_id_and_header_for_every_version_and_qos() {
    for version in [
        ProtocolVersion::V31,
        ProtocolVersion::V311,
        ProtocolVersion::V5,
    ] {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let encoder = Encoder::new(version);
            let template = PublishTemplate::new(&encoder, "bench/7", qos, false, 32).unwrap();
            let mut wire = BytesMut::new();
            for seq in 0..3u32 {
                let id = NonZeroU16::new(u16::try_from(seq).unwrap() + 1000).unwrap();
                let header = PayloadHeader {
                    publisher: 7,
                    seq,
                    sent_ns: 42 + u64::from(seq),
                };
                template.append(&mut wire, id, &header);
            }
            assert_eq!(wire.len(), 3 * template.len());
            let mut decoder = Decoder::client(version, u32::MAX);
            for seq in 0..3u32 {
                let Some(Packet::Publish(p)) = decoder.decode(&mut wire).unwrap() else {
                    panic!("expected a PUBLISH ({version:?}, {qos:?})");
                };
                assert_eq!(p.topic, "bench/7");
                assert_eq!(p.qos, qos);
                assert_eq!(p.payload.len(), 32);
                let expected_id = (qos != QoS::AtMostOnce)
                    .then(|| NonZeroU16::new(u16::try_from(seq).unwrap() + 1000).unwrap());
                assert_eq!(p.packet_id, expected_id);
                assert_eq!(
                    PayloadHeader::read(&p.payload),
                    Some(PayloadHeader {
                        publisher: 7,
                        seq,
                        sent_ns: 42 + u64::from(seq)
                    })
                );
            }
            assert!(wire.is_empty());
        }
    }
}

#[test]
fn histograms_survive_the_trip_between_processes() {
    let mut a = LatencyHist::new();
    let mut b = LatencyHist::new();
    for ns in [1_000, 2_000, 3_000] {
        a.record(ns);
    }
    b.record_n(1_000_000, 7);
    let mut merged = LatencyHist::from_buckets(&a.to_buckets());
    merged.merge(&LatencyHist::from_buckets(&b.to_buckets()));
    assert_eq!(merged.count(), 10);
    let s = merged.summary();
    assert!(
        (s.max_us - 1_000.0).abs() / 1_000.0 < 0.001,
        "max {}",
        s.max_us
    );
}

#[test]
fn raw_results_merge_counts_and_error_kinds() {
    let mut a = RawResult {
        procs: 1,
        ..RawResult::default()
    };
    a.publish.sent = 10;
    a.receive.seq.unique = 9;
    a.connect.first_ns = 500;
    a.connect.last_ns = 900;
    a.add_error("connect: refused".into());
    let mut b = RawResult {
        procs: 1,
        ..RawResult::default()
    };
    b.publish.sent = 5;
    b.receive.seq.unique = 5;
    b.connect.first_ns = 400;
    b.connect.last_ns = 1_000;
    b.add_errors("connect: refused".into(), 2);
    let json = serde_json::to_string(&b).unwrap();
    a.merge(&serde_json::from_str(&json).unwrap());
    assert_eq!(a.procs, 2);
    assert_eq!(a.publish.sent, 15);
    assert_eq!(a.receive.seq.unique, 14);
    assert_eq!((a.connect.first_ns, a.connect.last_ns), (400, 1_000));
    assert_eq!(a.errors.get("connect: refused"), Some(&3));
}

#[test]
fn error_kinds_are_bounded() {
    let mut raw = RawResult::default();
    for i in 0..100 {
        raw.add_error(format!("error {i}"));
    }
    assert!(raw.errors.len() <= 17);
    assert_eq!(raw.errors.values().sum::<u64>(), 100);
}

#[test]
fn slices_cover_every_client_exactly_once() {
    for total in [0u64, 1, 7, 10_000, 19_999] {
        for count in 1..=5u64 {
            let mut next = 0;
            for index in 0..count {
                let r = Slice { index, count }.range(total);
                assert_eq!(r.start, next);
                assert!(r.end - r.start <= total / count + 1);
                next = r.end;
            }
            assert_eq!(next, total);
        }
    }
    assert_eq!(Slice::parse("2/3").unwrap(), Slice { index: 2, count: 3 });
    assert!(Slice::parse("3/3").is_err());
    assert!(Slice::parse("x").is_err());
}

#[test]
fn message_limit_is_shared_out_exactly() {
    let shares: Vec<u64> = (0..3).map(|i| share_of(10, 3, i)).collect();
    assert_eq!(shares, [4, 3, 3]);
    assert_eq!(share_of(0, 3, 0), u64::MAX, "0 means unlimited");
}

#[test]
fn a_launcher_behind_its_schedule_starts_what_is_due_without_sleeping() {
    // 20,000 connections/s: one due every 50 µs. A millisecond into the
    // schedule (tokio's timer tick), clients 0..=20 are due and start at
    // once; the 22nd is 50 µs ahead and is slept for.
    let (start, interval) = (1_000_000, 50_000);
    let now = start + 1_000_000;
    for k in 0..=20 {
        assert_eq!(wait_before(now, start, k, interval), None, "client {k}");
    }
    assert_eq!(
        wait_before(now, start, 21, interval),
        Some(start + 21 * interval)
    );
    assert_eq!(
        wait_before(start, start, 0, interval),
        None,
        "the first is due at the start"
    );
    assert_eq!(
        wait_before(0, start, 5, 0),
        None,
        "no interval: all at once"
    );
}

#[test]
fn topic_placeholders_expand() {
    assert_eq!(
        expand_topic("t/%i/%c/%u", 17, "bench-17", Some("bob")),
        "t/17/bench-17/bob"
    );
    assert_eq!(expand_topic("plain", 1, "c", None), "plain");
}

#[test]
fn proc_stat_fields_are_counted_after_the_command_name() {
    // A command name with spaces and a parenthesis must not shift the fields.
    let stat = "42 (we ird) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0 100 1000 50";
    assert_eq!(parse_cpu_ticks(stat), Some(325));
    let status = "Name:\tmosquitto\nVmHWM:\t    9000 kB\nVmRSS:\t    8600 kB\n";
    assert_eq!(parse_status_kb(status, "VmRSS:"), Some(8_600));
    assert_eq!(parse_status_kb(status, "VmHWM:"), Some(9_000));
    assert_eq!(parse_status_kb(status, "VmSwap:"), None);
}

#[test]
fn children_get_the_parents_arguments_without_procs() {
    let args = [
        "pubsub",
        "--procs",
        "3",
        "--pubs",
        "4",
        "--procs=2",
        "-p",
        "1883",
    ];
    let out: Vec<String> = child_args(args.iter().map(Into::into))
        .into_iter()
        .map(|s| s.into_string().unwrap())
        .collect();
    assert_eq!(out, ["pubsub", "--pubs", "4", "-p", "1883"]);
}

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    bench: BenchArgs,
}

#[test]
fn emqtt_bench_flags_parse_with_dash_h_as_the_host() {
    let cli = Cli::try_parse_from([
        "roost-bench",
        "pub",
        "-h",
        "127.0.0.2,localhost",
        "-p",
        "1884",
        "-V",
        "4",
        "-c",
        "10",
        "-i",
        "5",
        "-t",
        "bench/%i",
        "-q",
        "1",
        "-s",
        "64",
        "-I",
        "20",
        "-L",
        "1000",
        "-F",
        "8",
        "-k",
        "60",
        "-u",
        "user",
        "-P",
        "pw",
        "--ifaddr",
        "127.0.1.1,127.0.1.2",
    ])
    .unwrap();
    let BenchCommand::Pub(a) = cli.bench.command else {
        panic!("expected pub")
    };
    assert_eq!(a.common.hosts, ["127.0.0.2", "localhost"]);
    assert_eq!((a.common.port, a.common.version, a.count), (1884, 4, 10));
    assert_eq!(
        (a.qos, a.size, a.msg_interval_ms, a.limit, a.inflight),
        (1, 64, 20, 1000, 8)
    );
    assert_eq!(a.common.ifaddr, ["127.0.1.1", "127.0.1.2"]);
    assert_eq!(a.common.username.as_deref(), Some("user"));
}

#[test]
fn pubsub_flags_parse() {
    let cli = Cli::try_parse_from([
        "roost-bench",
        "pubsub",
        "--pubs",
        "100",
        "--subs",
        "100",
        "--topic-mode",
        "pairs",
        "--rate",
        "20000",
        "--duration",
        "30",
        "--procs",
        "2",
        "--json",
    ])
    .unwrap();
    let BenchCommand::Pubsub(a) = cli.bench.command else {
        panic!("expected pubsub")
    };
    assert_eq!(
        (a.pubs, a.subs, a.rate, a.duration_s),
        (100, 100, 20_000, 30)
    );
    assert_eq!(a.topic_mode, TopicMode::Pairs);
    assert!(a.common.json);
    assert_eq!(a.common.procs, 2);
}

#[test]
fn protocol_levels_outside_3_to_5_are_refused() {
    assert!(Cli::try_parse_from(["roost-bench", "conn", "-V", "6"]).is_err());
    assert!(Cli::try_parse_from(["roost-bench", "conn", "-V", "3"]).is_ok());
}

#[test]
fn remote_hosts_and_bad_transport_options_are_refused_before_connecting() {
    let parse = |args: &[&str]| {
        let mut all = vec!["roost-bench", "conn", "-c", "1"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap().bench
    };
    let err = |args: &[&str]| format!("{:#}", roost_bench::run(parse(args)).unwrap_err());
    assert!(err(&["-h", "192.0.2.1"]).contains("not a loopback address"));
    assert!(err(&["--ifaddr", "192.0.2.1"]).contains("not a loopback address"));
    assert!(err(&["--cacertfile", "ca.pem"]).contains("need -S"));
    assert!(err(&["-S", "--certfile", "c.pem"]).contains("go together"));
    let missing = std::env::temp_dir().join("roost-bench-no-such-ca.pem");
    let missing = missing.to_str().unwrap();
    assert!(err(&["-S", "--cacertfile", missing]).contains("--cacertfile"));
    assert!(err(&["-S", "--sni", "not a name"]).contains("not a TLS server name"));
}

/// How the `roost` binary embeds the tool: `roost bench <scenario> …`.
#[derive(Debug, Parser)]
#[command(name = "roost", version)]
struct RoostCli {
    #[arg(short = 'p', long = "port")]
    port: Option<u16>,
    #[command(subcommand)]
    command: Option<RoostCommand>,
}

#[derive(Debug, clap::Subcommand)]
enum RoostCommand {
    Bench(BenchArgs),
}

#[test]
fn embeds_as_a_roost_subcommand_without_flag_clashes() {
    let cli = RoostCli::try_parse_from([
        "roost",
        "bench",
        "sub",
        "-h",
        "127.0.0.1",
        "-p",
        "1999",
        "-V",
        "3",
        "-c",
        "2",
        "-t",
        "a/%i",
    ])
    .unwrap();
    assert_eq!(cli.port, None, "-p belongs to the scenario, not to roost");
    let Some(RoostCommand::Bench(bench)) = cli.command else {
        panic!("expected bench")
    };
    let BenchCommand::Sub(a) = bench.command else {
        panic!("expected sub")
    };
    assert_eq!((a.common.port, a.common.version, a.count), (1999, 3, 2));
    assert_eq!(a.common.hosts, ["127.0.0.1"]);
}

#[test]
fn schedstat_wait_is_the_second_field() {
    use roost_bench::procstat::parse_schedstat_wait_ns;
    assert_eq!(
        parse_schedstat_wait_ns("82286 2835900 2\n"),
        Some(2_835_900)
    );
    assert_eq!(parse_schedstat_wait_ns("82286"), None);
}

fn common_of(args: &[&str]) -> roost_bench::CommonArgs {
    let mut all = vec!["roost-bench"];
    all.extend_from_slice(args);
    Cli::try_parse_from(all)
        .unwrap()
        .bench
        .command
        .common()
        .clone()
}

#[test]
fn client_ids_name_the_role_so_sub_and_pub_runs_never_collide() {
    use roost_bench::plan::client_id;
    let plain = common_of(&["sub", "-t", "t"]);
    let sub = client_id(&plain, "sub", 3, "run1");
    let publisher = client_id(&plain, "pub", 3, "run1");
    assert_ne!(sub, publisher);
    assert!(sub.ends_with("_bench_sub_3_run1"), "{sub}");
    // Two runs of the same scenario differ by their run token.
    assert_ne!(sub, client_id(&plain, "sub", 3, "run2"));
    let prefixed = common_of(&["sub", "-t", "t", "--prefix", "lab"]);
    assert_eq!(client_id(&prefixed, "sub", 3, "run1"), "lab_bench_sub_3");
    let short = common_of(&["sub", "-t", "t", "--shortids"]);
    assert_eq!(client_id(&short, "sub", 3, "run1"), "3");
    let short = common_of(&[
        "sub",
        "-t",
        "t",
        "--shortids",
        "--prefix",
        "dev-",
        "-n",
        "5",
    ]);
    assert_eq!(short.start_number, 5);
    assert_eq!(client_id(&short, "sub", 5, "run1"), "dev-5");
}

#[test]
fn emqtt_bench_flags_parse() {
    let cli = Cli::try_parse_from([
        "roost-bench",
        "pub",
        "-t",
        "t",
        "-m",
        "hello",
        "-l",
        "--prefix",
        "p",
        "-n",
        "10",
        "--shortids",
        "--quiet",
    ])
    .unwrap();
    let BenchCommand::Pub(args) = cli.bench.command else {
        panic!("pub expected");
    };
    assert_eq!(args.message.as_deref(), Some("hello"));
    assert!(args.common.lowmem && args.common.shortids && args.common.quiet);
    assert_eq!(args.common.start_number, 10);
}

#[test]
fn a_fixed_message_template_carries_the_payload_as_given() {
    let encoder = Encoder::new(ProtocolVersion::V5);
    let template =
        PublishTemplate::fixed(&encoder, "t", QoS::AtLeastOnce, false, b"hello").unwrap();
    let mut out = BytesMut::new();
    let header = PayloadHeader {
        publisher: 1,
        seq: 2,
        sent_ns: 3,
    };
    template.append(&mut out, NonZeroU16::new(7).unwrap(), &header);
    let mut decoder = Decoder::client(ProtocolVersion::V5, 1 << 20);
    match decoder.decode(&mut out).unwrap() {
        Some(Packet::Publish(publish)) => {
            assert_eq!(&publish.payload[..], b"hello");
            assert_eq!(publish.packet_id, NonZeroU16::new(7));
        }
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}
