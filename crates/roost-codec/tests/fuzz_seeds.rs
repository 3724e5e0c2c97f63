//! Writes the seed corpus of the cargo-fuzz targets in `fuzz/corpus/`:
//! valid packets of every type from the round-trip generators, with a fixed
//! RNG seed so the files are reproducible. Run by hand after changing the
//! generators:
//!
//! `cargo test -p roost-codec --test fuzz_seeds -- --ignored`

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use bytes::BytesMut;
use common::*;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use roost_codec::*;

const SEEDS_PER_TARGET: usize = 32;

fn runner() -> TestRunner {
    TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    )
}

fn packets(version: ProtocolVersion, runner: &mut TestRunner, n: usize) -> Vec<BytesMut> {
    let strategy = packet(version);
    (0..n)
        .map(|_| encode(version, &strategy.new_tree(runner).unwrap().current()))
        .collect()
}

fn write(target: &str, seeds: &[Vec<u8>]) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    for (i, seed) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:03}")), seed).unwrap();
    }
}

#[test]
#[ignore = "writes fuzz/corpus; run by hand"]
fn write_fuzz_seed_corpus() {
    let mut runner = runner();
    let n = SEEDS_PER_TARGET;
    // decode_v3 / decode_v5: the bytes after the fixed CONNECT; pairs of
    // packets so the fuzzer also sees streams.
    for (target, version) in [
        ("decode_v3", ProtocolVersion::V311),
        ("decode_v5", ProtocolVersion::V5),
    ] {
        let single = packets(version, &mut runner, n);
        let seeds: Vec<Vec<u8>> = single
            .chunks(2)
            .flat_map(|pair| {
                let joined: Vec<u8> = pair.iter().flat_map(|p| p.iter().copied()).collect();
                [pair[0].to_vec(), joined]
            })
            .collect();
        write(target, &seeds);
    }
    // decode_any and roundtrip: a selector byte, then packets.
    let mut any = Vec::new();
    let mut roundtrip = Vec::new();
    for (i, version) in VERSIONS.iter().enumerate() {
        for p in packets(*version, &mut runner, n / 3 + 1) {
            let selector = u8::try_from(i + 1).unwrap();
            any.push([&[selector][..], &p].concat());
            roundtrip.push([&[u8::try_from(i).unwrap()][..], &p].concat());
        }
        let connect = encode(*version, &connect(*version));
        any.push([&[0u8][..], &connect].concat());
    }
    write("decode_any", &any);
    write("roundtrip", &roundtrip);
}
