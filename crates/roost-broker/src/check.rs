//! `roost check-config`: loads everything a start would load from a parsed
//! [`Config`] (certificates and keys of every TLS listener, the password,
//! SCRAM, ACL and ban files, JWT keys) without binding a port or opening the
//! store, and reports every problem rather than the first.

use crate::builtin_auth::{AuthConfig, install};
use crate::config::{Config, ListenerKind};
use crate::extensions::Extensions;

/// Every problem that would stop `config` from starting, one message each,
/// naming the listener or `[auth.*]` section and the file. Empty: it starts
/// (unless a port is taken or the store cannot be opened).
pub fn check(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    for listener in config.effective_listeners() {
        let name = format!("{}://{}", listener.kind.scheme(), listener.bind);
        if let Err(message) = check_listener(&listener, &name) {
            problems.push(format!("listener {name}: {message}"));
        }
    }
    // One section at a time, so a bad password file does not hide a bad ACL.
    let sections: [(&str, AuthConfig); 7] = [
        (
            "banned",
            AuthConfig {
                banned: config.auth.banned.clone(),
                ..AuthConfig::default()
            },
        ),
        (
            "password_file",
            AuthConfig {
                password_file: config.auth.password_file.clone(),
                ..AuthConfig::default()
            },
        ),
        (
            "jwt",
            AuthConfig {
                jwt: config.auth.jwt.clone(),
                ..AuthConfig::default()
            },
        ),
        (
            "http",
            AuthConfig {
                http: config.auth.http.clone(),
                ..AuthConfig::default()
            },
        ),
        (
            "scram",
            AuthConfig {
                scram: config.auth.scram.clone(),
                ..AuthConfig::default()
            },
        ),
        (
            "acl_file",
            AuthConfig {
                acl_file: config.auth.acl_file.clone(),
                ..AuthConfig::default()
            },
        ),
        (
            "http_acl",
            AuthConfig {
                http_acl: config.auth.http_acl.clone(),
                ..AuthConfig::default()
            },
        ),
    ];
    for (_, section) in sections {
        if let Err(message) = install(&section, &mut Extensions::default()) {
            problems.push(message);
        }
    }
    if config.http.enabled
        && let Some(tls) = &config.http.tls
        && let Err(message) = check_http_tls(tls)
    {
        problems.push(format!("http.tls: {message}"));
    }
    problems
}

/// The management listener's certificates, as `roost-admin` loads them.
#[cfg(feature = "tls")]
fn check_http_tls(tls: &crate::config::TlsConfig) -> Result<(), String> {
    crate::transport::tls::server_config(tls, false)
        .map(drop)
        .map_err(|e| e.0)
}

#[cfg(not(feature = "tls"))]
fn check_http_tls(_tls: &crate::config::TlsConfig) -> Result<(), String> {
    Err("this build of roost has no `tls` support (cargo feature `tls` of roost-broker)".into())
}

/// Builds what the listener's transport loads at bind time.
fn check_listener(listener: &crate::config::ListenerConfig, name: &str) -> Result<(), String> {
    if listener.kind == ListenerKind::Quic {
        return check_quic(listener);
    }
    crate::transport::stack::Stack::new(listener, name).map(drop)
}

#[cfg(feature = "quic")]
fn check_quic(listener: &crate::config::ListenerConfig) -> Result<(), String> {
    match &listener.tls {
        Some(tls) => crate::transport::tls::server_config(tls, true)
            .map(drop)
            .map_err(|e| e.0),
        None => Err("a QUIC listener needs `tls`".into()),
    }
}

#[cfg(not(feature = "quic"))]
fn check_quic(_listener: &crate::config::ListenerConfig) -> Result<(), String> {
    Err("this build of roost has no `quic` support (cargo feature `quic` of roost-broker)".into())
}
