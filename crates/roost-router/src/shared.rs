//! Shared subscription groups (`$share/{group}/{filter}`, MQTT 5.0 §4.8.2)
//! and the strategies that pick one member per message.
//!
//! Picking runs under `&self` (the broker routes under a read lock), so the
//! mutable bits of a group, its round-robin cursor and its sticky member, are
//! atomics. Races between two concurrent routes only make two messages land
//! on the same member once in a while; they never pick a non-member.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::Routed;
use crate::keyed::KeyedVec;

/// Strategy for picking one member of a shared group per message.
///
/// The default is [`SharedStrategy::RoundRobin`]: it spreads load evenly and
/// predictably, which is what a user of a work queue expects and is easy to
/// observe in tests. EMQX defaults to `random`, which is available too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SharedStrategy {
    /// Uniformly random member (internal SplitMix64, seeded per router).
    Random,
    /// Members in turn.
    #[default]
    RoundRobin,
    /// The same member while it stays subscribed (and available); a random
    /// one is chosen when there is none yet.
    Sticky,
    /// A stable hash of the publisher's client id modulo the member count:
    /// one publisher always reaches the same member while membership is
    /// unchanged (preserves per-publisher ordering).
    HashClientId,
    /// A stable hash of the topic modulo the member count: one topic always
    /// reaches the same member while membership is unchanged.
    HashTopic,
}

/// Marks "no sticky member chosen yet".
const NO_STICKY: usize = usize::MAX;

/// One shared group at one filter: its members and its picking state.
#[derive(Debug)]
pub(crate) struct SharedGroup<K> {
    pub(crate) name: Box<str>,
    /// The filter the group is at (a group is its name *and* its filter):
    /// a cluster node selects groups by both (`Router::route_select`).
    pub(crate) filter: Box<str>,
    pub(crate) members: KeyedVec<K, Routed>,
    cursor: AtomicUsize,
    sticky: AtomicUsize,
}

/// What a pick may look at besides the group itself.
pub(crate) struct PickInput<'a, K> {
    pub(crate) strategy: SharedStrategy,
    pub(crate) rng: &'a SplitMix,
    pub(crate) publisher_id: &'a str,
    pub(crate) topic: &'a str,
    /// Members for which this is false are skipped while any member passes.
    pub(crate) available: Option<&'a dyn Fn(&K) -> bool>,
    /// Never picked.
    pub(crate) exclude: Option<&'a K>,
}

impl<K: Eq + std::hash::Hash + Clone> SharedGroup<K> {
    pub(crate) fn new(name: &str, filter: &str) -> Self {
        Self {
            name: name.into(),
            filter: filter.into(),
            members: KeyedVec::default(),
            cursor: AtomicUsize::new(0),
            sticky: AtomicUsize::new(NO_STICKY),
        }
    }

    /// Removes a member and keeps the sticky choice pointing at the same
    /// member (or clears it when that member left).
    pub(crate) fn remove(&mut self, key: &K) -> Option<Routed> {
        let (at, sub) = self.members.remove(key)?;
        let moved_from = self.members.len();
        let sticky = self.sticky.get_mut();
        if *sticky == at {
            *sticky = NO_STICKY;
        } else if *sticky == moved_from {
            *sticky = at;
        }
        Some(sub)
    }

    /// Picks one member for one message, per `input`.
    pub(crate) fn pick(&self, input: &PickInput<'_, K>) -> Option<&(K, Routed)> {
        let items = self.members.items();
        if items.is_empty() {
            return None;
        }
        let allowed = |i: usize| {
            input
                .exclude
                .is_none_or(|ex| items.get(i).is_some_and(|(k, _)| k != ex))
        };
        let at = match input.available {
            Some(available) => self
                .pick_where(input, items.len(), |i| {
                    allowed(i) && items.get(i).is_some_and(|(k, _)| available(k))
                })
                .or_else(|| self.pick_where(input, items.len(), allowed)),
            None if input.exclude.is_some() => self.pick_where(input, items.len(), allowed),
            None => Some(self.pick_any(input, items.len())),
        }?;
        items.get(at)
    }

    /// Fast path: every member is acceptable. `len > 0`.
    fn pick_any(&self, input: &PickInput<'_, K>, len: usize) -> usize {
        match input.strategy {
            SharedStrategy::RoundRobin => self.cursor.fetch_add(1, Ordering::Relaxed) % len,
            SharedStrategy::Random => input.rng.below(len),
            SharedStrategy::Sticky => {
                let current = self.sticky.load(Ordering::Relaxed);
                if current < len {
                    return current;
                }
                let chosen = input.rng.below(len);
                self.sticky.store(chosen, Ordering::Relaxed);
                chosen
            }
            SharedStrategy::HashClientId => bucket(stable_hash(input.publisher_id), len),
            SharedStrategy::HashTopic => bucket(stable_hash(input.topic), len),
        }
    }

    /// Picks among the members for which `ok` holds; `None` if none does.
    fn pick_where(
        &self,
        input: &PickInput<'_, K>,
        len: usize,
        ok: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        match input.strategy {
            SharedStrategy::RoundRobin => {
                let start = self.cursor.fetch_add(1, Ordering::Relaxed) % len;
                let Some(chosen) = first_from(start, len, &ok) else {
                    // No member passes: the caller picks again among all, so
                    // this turn is not used (else every such message would
                    // advance the cursor twice: with two members, always the
                    // same one).
                    self.cursor.fetch_sub(1, Ordering::Relaxed);
                    return None;
                };
                if chosen != start {
                    // Continue after the member actually used, so the next
                    // skipped-over member is not hit twice in a row.
                    self.cursor.store(chosen.wrapping_add(1), Ordering::Relaxed);
                }
                Some(chosen)
            }
            SharedStrategy::Random => random_where(input.rng, len, &ok),
            SharedStrategy::Sticky => {
                let current = self.sticky.load(Ordering::Relaxed);
                if current < len && ok(current) {
                    return Some(current);
                }
                let chosen = random_where(input.rng, len, &ok)?;
                self.sticky.store(chosen, Ordering::Relaxed);
                Some(chosen)
            }
            SharedStrategy::HashClientId => {
                first_from(bucket(stable_hash(input.publisher_id), len), len, &ok)
            }
            SharedStrategy::HashTopic => {
                first_from(bucket(stable_hash(input.topic), len), len, &ok)
            }
        }
    }
}

/// The first index at or after `start` (wrapping) for which `ok` holds.
fn first_from(start: usize, len: usize, ok: &impl Fn(usize) -> bool) -> Option<usize> {
    (0..len).map(|step| (start + step) % len).find(|&i| ok(i))
}

/// A uniformly random index among those for which `ok` holds (two passes: no
/// allocation, no bias towards members that follow unavailable ones).
fn random_where(rng: &SplitMix, len: usize, ok: &impl Fn(usize) -> bool) -> Option<usize> {
    let count = (0..len).filter(|&i| ok(i)).count();
    if count == 0 {
        return None;
    }
    let nth = rng.below(count);
    (0..len).filter(|&i| ok(i)).nth(nth)
}

/// Maps a 64-bit hash onto `0..len` (`len > 0`).
fn bucket(hash: u64, len: usize) -> usize {
    // `len` fits in u64 on every supported target; the result is < len.
    usize::try_from(hash % len as u64).unwrap_or(0)
}

/// FNV-1a followed by a SplitMix finaliser: stable across processes, nodes and
/// releases (unlike std's randomly keyed hasher), so the `Hash*` strategies
/// send a publisher or topic to the same member everywhere.
pub(crate) fn stable_hash(s: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in s.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix64(hash)
}

/// SplitMix64 finaliser: spreads every input bit over every output bit.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SplitMix64 over an atomic counter: a lock-free, allocation-free generator
/// usable through `&self`. Not cryptographic; only spreads load.
#[derive(Debug)]
pub(crate) struct SplitMix(AtomicU64);

impl SplitMix {
    const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

    pub(crate) fn new(seed: u64) -> Self {
        Self(AtomicU64::new(seed))
    }

    /// A seed drawn from std's per-process random keys (no clock, no extra dependency).
    pub(crate) fn random_seed() -> u64 {
        RandomState::new().hash_one(0x5eed_u64)
    }

    pub(crate) fn next_u64(&self) -> u64 {
        let state = self
            .0
            .fetch_add(Self::GAMMA, Ordering::Relaxed)
            .wrapping_add(Self::GAMMA);
        mix64(state)
    }

    /// A number in `0..len` (`len > 0`); the modulo bias is below 2^-40 for
    /// any realistic group size.
    pub(crate) fn below(&self, len: usize) -> usize {
        bucket(self.next_u64(), len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_hash_is_stable() {
        // Pinned: changing the function would reshuffle every HashClientId
        // assignment in a running cluster.
        assert_eq!(stable_hash(""), mix64(0xcbf2_9ce4_8422_2325));
        assert_eq!(stable_hash("client-1"), stable_hash("client-1"));
        assert_ne!(stable_hash("client-1"), stable_hash("client-2"));
    }

    #[test]
    fn splitmix_below_stays_in_range() {
        let rng = SplitMix::new(1);
        for len in 1..50 {
            assert!(rng.below(len) < len);
        }
    }
}
