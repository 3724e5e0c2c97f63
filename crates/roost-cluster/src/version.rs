//! The cluster protocol version (docs/cluster.md, "Mixed builds"): what
//! nodes must agree on to share a cluster — the inbox batch format, the
//! Lua scripts and the key schema. Bumped whenever one of them changes in
//! a way an older or newer node would misread. Each node announces it in
//! its node hash (`<p>{sys}:node:<id>`, field `protocol`) when it joins;
//! a node joining a cluster whose live nodes announce another version
//! refuses to start, naming both, instead of mixing formats silently.

use std::time::SystemTime;

use crate::ClusterError;
use crate::keys::Keys;
use crate::link::Link;
use crate::wire::unix_ms;

/// This build's cluster protocol version.
///
/// 1: the builds before the version was announced (a live node whose hash
/// has no `protocol` field). 2: durable mode's inbox batch (`only`), the
/// handoff's route removal, and the token-checked session list. 3: the
/// adoption of a dead node's sessions and the janitor's job (`ADOPT`, an
/// orphan's will kept as `owill` and taken out by `STILL_ORPHAN`,
/// `EXPIRE_NODE` recording the janitor in `{sys}:jobs`). 4: adoption
/// spread over the live nodes (the job record's adopters and their shares,
/// `spread.rs`), the death time kept with an orphan's will, the replay's
/// job check with its progress.
pub const PROTOCOL: u32 = 4;

/// The node hash field carrying it.
pub(crate) const FIELD: &str = "protocol";

/// What a live node's hash says: `None` for a node without a hash (collected
/// meanwhile, or registering right now: nothing to compare), 1 for a hash
/// without the field (a build from before versions were announced).
fn announced(fields: &[Option<String>]) -> Option<u32> {
    let [started, protocol] = fields else {
        return None;
    };
    match (started, protocol) {
        (_, Some(v)) => Some(v.parse().unwrap_or(0)),
        (Some(_), None) => Some(1),
        (None, None) => None,
    }
}

/// Refuses to join when a live node other than `me` announces another
/// protocol version. Blocking (one round trip, then one per live node).
pub(crate) fn check(link: &mut Link, keys: &Keys, me: &str) -> Result<(), ClusterError> {
    let now = unix_ms(SystemTime::now());
    let live: Vec<String> = link.run(|c| {
        redis::cmd("ZRANGEBYSCORE")
            .arg(keys.nodes())
            .arg(now)
            .arg("+inf")
            .query(c)
    })?;
    for node in live.iter().filter(|n| *n != me) {
        let fields: Vec<Option<String>> = link.run(|c| {
            redis::cmd("HMGET")
                .arg(keys.node_info(node))
                .arg("started")
                .arg(FIELD)
                .query(c)
        })?;
        match announced(&fields) {
            Some(theirs) if theirs != PROTOCOL => {
                return Err(ClusterError::Version {
                    node: node.clone(),
                    theirs,
                    ours: PROTOCOL,
                });
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn a_hash_without_the_field_is_version_1_and_no_hash_is_nothing_to_compare() {
        assert_eq!(announced(&[s("1"), s("2")]), Some(2));
        assert_eq!(announced(&[None, s("3")]), Some(3));
        assert_eq!(announced(&[s("1"), None]), Some(1));
        assert_eq!(announced(&[None, None]), None);
        assert_eq!(announced(&[s("1"), s("x")]), Some(0));
    }
}
