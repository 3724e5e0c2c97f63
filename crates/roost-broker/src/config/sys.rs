//! `[sys]`: the `$SYS` topics the broker publishes about itself
//! (docs/management.md, "$SYS topics").

use serde::Deserialize;

/// The longest `sys.interval` accepted: a day.
const MAX_INTERVAL_SECS: u64 = 86_400;

/// `[sys]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SysConfig {
    /// Seconds between two updates of the `$SYS/broker/...` topics
    /// (Mosquitto's `sys_interval`); 0 turns them off.
    pub interval: u64,
    /// Publish EMQX-style `$SYS/brokers/<node>/clients/<client id>/connected`
    /// and `/disconnected` events (JSON, not retained).
    pub client_events: bool,
}

impl Default for SysConfig {
    fn default() -> Self {
        Self {
            interval: 10,
            client_events: false,
        }
    }
}

impl SysConfig {
    /// Checks the values; `Err((key, message))`.
    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.interval > MAX_INTERVAL_SECS {
            return Err((
                "sys.interval",
                format!("must be at most {MAX_INTERVAL_SECS} seconds (0 turns $SYS off)"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use crate::config::{Config, ConfigError};

    #[test]
    fn sys_defaults_to_ten_seconds_without_client_events() {
        let config = Config::from_toml("", "test").unwrap();
        assert_eq!(config.sys.interval, 10);
        assert!(!config.sys.client_events);
    }

    #[test]
    fn sys_keys_are_read() {
        let config =
            Config::from_toml("[sys]\ninterval = 1\nclient_events = true\n", "test").unwrap();
        assert_eq!(config.sys.interval, 1);
        assert!(config.sys.client_events);
    }

    #[test]
    fn a_bad_sys_key_names_key_and_line() {
        let err = Config::from_toml("[sys]\n\ninterval = \"often\"\n", "test").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("line 3"), "{text}");
        assert!(text.contains("interval"), "{text}");
        let err = Config::from_toml("[sys]\nintervall = 5\n", "test").unwrap_err();
        assert!(err.to_string().contains("intervall"), "{err}");
    }

    #[test]
    fn an_interval_over_a_day_is_refused_by_key() {
        let err = Config::from_toml("[sys]\ninterval = 100000\n", "test").unwrap_err();
        assert!(
            matches!(&err, ConfigError::Value { key, .. } if key == "sys.interval"),
            "{err}"
        );
    }
}
