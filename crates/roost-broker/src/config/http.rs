//! `[http]`: the management listener (REST API, Prometheus metrics,
//! dashboard) that crate `roost-admin` serves (docs/management.md). Parsed
//! here so the one config parser names the key and line of a mistake.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::transport::config::TlsConfig;

/// The management listener's port when `[http] bind` is not set (EMQX's
/// dashboard port, which its users expect).
pub const DEFAULT_HTTP_PORT: u16 = 18083;

/// `[http]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Serve the management API (the `roost` server starts it; default on).
    pub enabled: bool,
    /// Address to bind. Unset: `127.0.0.1:18083`, and a taken port is logged
    /// and the broker runs without the API; set explicitly, a taken port
    /// fails the start.
    pub bind: Option<SocketAddr>,
    /// HTTPS with these certificate settings (the listeners' `tls` table;
    /// client certificates are not asked for).
    pub tls: Option<TlsConfig>,
    /// `/metrics` asks for credentials too (default: open, like most
    /// Prometheus exporters; bind it to a private address).
    pub metrics_auth: bool,
    /// Lifetime of a dashboard login token, in seconds.
    pub token_ttl_s: u64,
    /// Failed logins allowed per peer address within `login_window_s`;
    /// more get 429 until the window has passed.
    pub login_max_failures: u32,
    /// The rate-limit window of failed logins, in seconds.
    pub login_window_s: u64,
    /// A dashboard user defined in the config (with `admin_password_hash`,
    /// an argon2 PHC string from `roost ctl admin hash`), beside the users of
    /// the admin file.
    pub admin_user: Option<String>,
    /// Argon2 hash of `admin_user`'s password (`$argon2id$...`).
    pub admin_password_hash: Option<String>,
    /// Where API keys and dashboard users are kept. Unset:
    /// `<store.data_dir>/admin.json`.
    pub admin_file: Option<PathBuf>,
    /// Open HTTP(S) connections served at once; one more is closed as soon
    /// as it is accepted (a flood of idle clients cannot exhaust the
    /// broker's file descriptors). Default 256.
    pub max_connections: usize,
    /// Cluster mode: the URL the other nodes reach this API at
    /// (`http://10.0.0.5:18083`). Unset: the scheme and bound address, with
    /// the host name for an unspecified address (`0.0.0.0`, `::`).
    pub advertise_url: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            bind: None,
            tls: None,
            metrics_auth: false,
            token_ttl_s: 3_600,
            login_max_failures: 5,
            login_window_s: 60,
            admin_user: None,
            admin_password_hash: None,
            admin_file: None,
            max_connections: 256,
            advertise_url: None,
        }
    }
}

impl HttpConfig {
    /// The address to bind: `bind`, else the default.
    pub fn effective_bind(&self) -> SocketAddr {
        self.bind
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], DEFAULT_HTTP_PORT)))
    }

    /// The URL other nodes reach this API at (`advertise_url`, else built
    /// from `bound`, the address actually bound).
    pub fn effective_advertise_url(&self, bound: SocketAddr) -> String {
        if let Some(url) = &self.advertise_url {
            return url.trim_end_matches('/').to_string();
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        if bound.ip().is_unspecified() {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .or_else(|_| std::fs::read_to_string("/etc/hostname"))
                .map(|h| h.trim().to_string())
                .unwrap_or_default();
            if !host.is_empty() {
                return format!("{scheme}://{host}:{}", bound.port());
            }
        }
        format!("{scheme}://{bound}")
    }

    /// The admin file: `admin_file`, else `admin.json` in `data_dir`.
    pub fn effective_admin_file(&self, data_dir: &std::path::Path) -> PathBuf {
        self.admin_file
            .clone()
            .unwrap_or_else(|| data_dir.join("admin.json"))
    }

    /// A value the types alone do not rule out: `(key, message)`.
    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.token_ttl_s == 0 {
            return Err(("http.token_ttl_s", "must be at least 1".into()));
        }
        if self.login_max_failures == 0 {
            return Err(("http.login_max_failures", "must be at least 1".into()));
        }
        if self.login_window_s == 0 {
            return Err(("http.login_window_s", "must be at least 1".into()));
        }
        if self.max_connections == 0 {
            return Err(("http.max_connections", "must be at least 1".into()));
        }
        if let Some(url) = &self.advertise_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err((
                "http.advertise_url",
                format!("`{url}` is not an http:// or https:// URL"),
            ));
        }
        match (&self.admin_user, &self.admin_password_hash) {
            (Some(_), None) => {
                return Err((
                    "http.admin_password_hash",
                    "required with http.admin_user (an argon2 hash: `roost ctl admin hash`)".into(),
                ));
            }
            (None, Some(_)) => {
                return Err((
                    "http.admin_user",
                    "required with http.admin_password_hash".into(),
                ));
            }
            (Some(user), Some(hash)) => {
                if user.is_empty() {
                    return Err(("http.admin_user", "must not be empty".into()));
                }
                if !hash.starts_with("$argon2") {
                    return Err((
                        "http.admin_password_hash",
                        "an argon2 PHC string ($argon2id$...) is expected, never a plain password"
                            .into(),
                    ));
                }
            }
            (None, None) => {}
        }
        if let Some(tls) = &self.tls
            && (tls.cert_file.as_os_str().is_empty() || tls.key_file.as_os_str().is_empty())
        {
            return Err(("http.tls", "needs cert_file and key_file".into()));
        }
        Ok(())
    }
}
