//! # roost-router
//!
//! Sans-IO routing core of Roost: who receives a message. It holds the
//! subscription trie, picks members of shared groups and indexes retained
//! messages. No I/O, no clock, no async runtime: the broker owns the locking
//! (a read-mostly `RwLock` around [`Router`]; [`Router::route`] takes `&self`).
//!
//! ## The subscription trie
//!
//! One node per filter level. Literal levels live in a hash map (std's
//! randomly keyed SipHash: levels come from clients, so the map must resist
//! hash flooding); `+` has its own child and `#` its own subscriber slot, so
//! matching a topic never scans siblings. Subscriptions `a/b`, `a/+/c`,
//! `a/#`, `#` and `$SYS/#`:
//!
//! ```text
//!  (root) ── hash: {#}
//!    ├── "a" ── hash: {a/#}
//!    │     ├── "b"   exact: {a/b}
//!    │     └── plus ── "c"   exact: {a/+/c}
//!    └── "$SYS" ── hash: {$SYS/#}
//! ```
//!
//! Routing `a/b` walks the topic once, with an explicit stack: at the root it
//! takes the `#` slot, then `"a"` (whose `#` slot matches: `a/#` also matches
//! `a`), then `"b"` and `plus` (a dead end for `a/b`: `c` is missing). A topic
//! starting with `$` skips the root's `#` slot and `plus` [MQTT-4.7.2-1].
//!
//! Each slot holds the non-shared subscriptions (one per subscriber key) and
//! the shared groups at that filter. A subscriber matched through several
//! filters gets one [`Target`] (max QoS, all subscription identifiers); each
//! matched shared group adds one member as its own target. Unsubscribing
//! frees the nodes it leaves empty ([`Router::node_count`] returns to 0).
//!
//! Every walk is iterative, so a filter or topic with tens of thousands of
//! levels cannot overflow a stack; any string is accepted without panicking.
//!
//! ## Topic filters, as matched here
//!
//! A level is a wildcard only when it is exactly `+`, or exactly `#` as the
//! last level. Levels are never normalised [MQTT-4.7.3-4]: empty levels count,
//! case matters.
//!
//! | filter | matches | does not match |
//! | --- | --- | --- |
//! | `sport/tennis/player1` | `sport/tennis/player1` | `sport/tennis/player1/ranking`, `Sport/tennis/player1` |
//! | `sport/tennis/+` | `sport/tennis/player1`, `sport/tennis/` | `sport/tennis`, `sport/tennis/player1/ranking` |
//! | `sport/#` | `sport`, `sport/`, `sport/tennis/player1` | `sports`, `$SYS/sport` |
//! | `#` | every topic not starting with `$` | `$SYS/uptime` |
//! | `+` | `finance`, the (invalid) empty topic | `/finance`, `$SYS` |
//! | `+/+` | `/finance`, `a/b` | `finance`, `$SYS/uptime` |
//! | `/+` | `/finance` | `finance` |
//! | `+/monitor/Clients` | `a/monitor/Clients` | `$SYS/monitor/Clients` [MQTT-4.7.2-1] |
//! | `$SYS/#` | `$SYS`, `$SYS/broker/uptime` | `$SYS2/x` |
//! | `a//b` | `a//b` | `a/b` |
//!
//! Invalid filters are rejected by the codec before they reach the router
//! [MQTT-4.7.1-1] [MQTT-4.7.1-2]; if one gets here anyway it is stored as
//! literals, never panics, and matches the same topics as [`roost_codec::topic::matches`]:
//!
//! | invalid filter | treated as |
//! | --- | --- |
//! | `sport/tennis#` | literal level `tennis#` |
//! | `sport/#/ranking` | literal level `#` (not last) |
//! | `sport+` | literal level `sport+` |
//! | empty filter | one empty level: matches only the (invalid) empty topic |
//!
//! Shared subscriptions arrive already split: [`Router::subscribe`] takes the
//! group of `$share/{group}/{filter}` and the filter separately.
//!
//! ## Cost
//!
//! Measured with `benches/trie.rs` on the shared 2-core build machine (topics
//! like `site/{s}/device/{d}/temp`; 70% literal filters, 20% `.../+`, 10%
//! `#`; ranges are over runs with and without other builds competing):
//!
//! | subscriptions | route (≈5-6 targets) | memory per subscription |
//! | --- | --- | --- |
//! | 1,000 | 190-210 ns | ≈200 B |
//! | 100,000 | 450-540 ns | ≈230 B |
//! | 1,000,000 | 810-850 ns | ≈210 B |
//!
//! Memory is the resident-set growth while building the router, divided by
//! the subscription count (2026-12-04; it was 344-389 B while the router also
//! kept a per-subscriber index of filters, which [`Router::remove_all`] now
//! takes from the caller instead). One route to 1,000
//! subscribers (half of them via two overlapping filters) takes 40-47 µs;
//! subscribing new filters runs at 2-3 million per second.
//!
//! ## Retained messages
//!
//! [`RetainedIndex`] is a second trie, keyed by topic and queried by filter
//! (the reverse of routing), with ordered children for paginated listing.
#![warn(missing_docs)]

mod children;
mod hasher;
mod keyed;
mod retained;
mod route;
mod router;
mod shared;
mod trie;

pub use retained::{Iter as RetainedIter, RetainedIndex};
pub use route::Target;
pub use router::{Router, Select};
pub use shared::SharedStrategy;

/// Key identifying a subscriber (the broker uses its session key type).
pub trait SubscriberKey: Clone + Eq + std::hash::Hash + Send + Sync + 'static {}

impl<T: Clone + Eq + std::hash::Hash + Send + Sync + 'static> SubscriberKey for T {}

/// One granted subscription (options with the granted QoS, identifier): the
/// same type the session keeps in its state.
pub use roost_codec::Subscription;

/// A subscription as the trie stores it: the granted subscription and the
/// broker's authorization tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Routed {
    /// What was granted.
    pub(crate) sub: Subscription,
    /// The broker's mark that every message this filter matches was
    /// authorized when it was subscribed: a tag naming the authorization
    /// rules in force then, `0` for none. A target's [`Target::cleared`] is
    /// the highest tag over its merged subscriptions; the broker checks each
    /// message at delivery unless that tag names the rules in force now. The
    /// router only carries it.
    pub(crate) cleared: u32,
}
