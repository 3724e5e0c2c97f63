//! Server decoder after a fixed valid 5.0 CONNECT, fed arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use roost_codec::ProtocolVersion;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let mut decoder = common::server_after_connect(ProtocolVersion::V5, 1 << 20);
    common::drain(&mut decoder, data);
});
