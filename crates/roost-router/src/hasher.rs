//! The hasher of the trie's literal-children maps.
//!
//! Topic levels come from clients, so the maps must resist hash flooding:
//! std's SipHash-1-3 with random keys. `RandomState` stores its two keys in
//! every map, and the trie has one map per node: 16 bytes on every node,
//! most of which are leaves. [`LevelHasher`] is the same SipHash with keys
//! drawn once per process, and takes no space in a map.

use std::hash::{BuildHasher, DefaultHasher, RandomState};
use std::sync::OnceLock;

/// Randomly keyed SipHash-1-3 (std's), one key pair per process.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LevelHasher;

/// The process's key pair, drawn on first use.
fn keys() -> &'static RandomState {
    static KEYS: OnceLock<RandomState> = OnceLock::new();
    KEYS.get_or_init(RandomState::new)
}

impl BuildHasher for LevelHasher {
    type Hasher = DefaultHasher;

    fn build_hasher(&self) -> DefaultHasher {
        keys().build_hasher()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_keys_for_every_map_and_no_space_in_one() {
        assert_eq!(LevelHasher.hash_one("a/b"), LevelHasher.hash_one("a/b"));
        assert_eq!(std::mem::size_of::<LevelHasher>(), 0);
    }
}
