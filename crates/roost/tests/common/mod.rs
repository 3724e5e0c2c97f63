//! Helpers shared by the `roost` binary's integration tests.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "each test binary uses its own part; helpers fail the test on anything unexpected"
)]

pub mod pki;

use roost_testkit::BrokerProcess;

/// The port of the broker's `scheme` listener (`mqtts`, `ws`, `wss`), from
/// its `listening on <scheme>://<addr>...` line. Listeners other than TCP
/// are announced before the TCP one the harness waits for, so the line is
/// there once the broker has started.
pub fn listener_port(broker: &BrokerProcess, scheme: &str) -> u16 {
    let log = broker.log();
    log.lines()
        .find_map(|line| line.split(&format!("listening on {scheme}://")).nth(1))
        .and_then(|rest| rest.split(['/', ' ']).next())
        .and_then(|addr| addr.rsplit(':').next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no {scheme} listener in the log:\n{log}"))
}
