//! Bans added or lifted at run time (the management API, `roost ctl ban`)
//! survive a restart of a single node with a persistent store: the whole ban
//! list is written to `<data_dir>/bans.json` after every change (atomically:
//! a temporary file renamed over it), and read back at start on top of the
//! config's `[auth.banned]` entries. Expired bans are dropped on the way.
//!
//! Not written with the in-memory store (nothing else outlives the process
//! then) nor in cluster mode, where the cluster's ban list in Redis is the
//! one every node loads (docs/cluster.md).
//!
//! The format is `[auth.banned]`'s: `{"entries": [{"who": "client:x",
//! "expires_at": 1700000000}]}`.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use roost_auth::{Ban, BanList, BannedConfig};

use crate::config::{Config, StoreBackend};

/// The file, when this broker keeps one.
pub(crate) fn path(config: &Config) -> Option<PathBuf> {
    let persistent = matches!(
        config.store.backend,
        Some(StoreBackend::Disk | StoreBackend::Redis)
    );
    (persistent && !config.cluster.enabled).then(|| config.store.data_dir.join("bans.json"))
}

/// Adds the bans of the file (if any) to `list`. A file that does not parse
/// is reported (with its path) and left alone: the config's bans still hold.
pub(crate) fn load(path: &Path, list: &BanList) -> Result<usize, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let config: BannedConfig =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let loaded = BanList::from_config(&config).map_err(|e| format!("{}: {e}", path.display()))?;
    let bans = loaded.list(SystemTime::now());
    let n = bans.len();
    for ban in bans {
        list.add(ban);
    }
    Ok(n)
}

/// Writes the bans in force now.
pub(crate) fn save(path: &Path, list: &BanList) -> Result<(), String> {
    let entries: Vec<serde_json::Value> = list
        .list(SystemTime::now())
        .into_iter()
        .map(|Ban { target, expires_at }| {
            let until = expires_at
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_secs());
            serde_json::json!({ "who": target.to_string(), "expires_at": until })
        })
        .collect();
    let text = serde_json::to_string_pretty(&serde_json::json!({ "entries": entries }))
        .map_err(|e| e.to_string())?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    roost_auth::write_atomically(path, text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use roost_auth::BanTarget;
    use std::time::Duration;

    #[test]
    fn bans_saved_load_back_and_expired_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bans.json");
        let list = BanList::new();
        let later = SystemTime::now() + Duration::from_secs(3_600);
        list.add(Ban::new(BanTarget::ClientId("c1".into()), None));
        list.add(Ban::new(BanTarget::Username("u1".into()), Some(later)));
        list.add(Ban::new(BanTarget::parse("ip:10.0.0.0/8").unwrap(), None));
        save(&path, &list).unwrap();
        let back = BanList::new();
        assert_eq!(load(&path, &back).unwrap(), 3);
        let mut names: Vec<String> = back
            .list(SystemTime::now())
            .iter()
            .map(|b| b.target.to_string())
            .collect();
        names.sort();
        assert_eq!(names, ["client:c1", "ip:10.0.0.0/8", "user:u1"]);
        assert!(load(&dir.path().join("none.json"), &back).is_ok());
        std::fs::write(&path, "{not json").unwrap();
        assert!(load(&path, &back).unwrap_err().contains("bans.json"));
    }
}
