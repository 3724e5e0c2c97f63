//! Raw bytes into every kind of decoder: a fresh server decoder (must start
//! with CONNECT) and client decoders of each version. The first byte picks
//! the decoder and a maximum packet size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use roost_codec::{Decoder, ProtocolVersion};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let max = if selector & 0x80 != 0 { 64 } else { 1 << 20 };
    let mut decoder = match selector % 4 {
        0 => Decoder::server(max),
        1 => Decoder::client(ProtocolVersion::V31, max),
        2 => Decoder::client(ProtocolVersion::V311, max),
        _ => Decoder::client(ProtocolVersion::V5, max),
    };
    common::drain(&mut decoder, rest);
});
