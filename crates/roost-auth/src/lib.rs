//! # roost-auth
//!
//! The built-in authenticators and authorizers of Roost, implementing the
//! traits of `roost-hooks`. Each one is built from a serde config struct
//! (unknown keys rejected) and is `Send + Sync`; the broker puts them in its
//! chains in the order the configuration lists them.
//!
//! ```text
//!  CONNECT ──▶ BanAuthenticator (0x8A Banned)      banned.rs
//!          ──▶ TlsIdentityAuthenticator            tls_identity.rs
//!          ──▶ PasswordFile (Mosquitto $6$/$7$/argon2id)   password/
//!          ──▶ JwtAuthenticator (HS*/RS*/ES*/EdDSA, JWKS)  jwt/
//!          ──▶ HttpAuthenticator (EMQX-style webhook)       http/
//!  AUTH    ──▶ ScramAuthenticator (SCRAM-SHA-256/512)       scram/
//!  PUBLISH / SUBSCRIBE ──▶ AclFile (first match wins)       acl/
//!                      ──▶ HttpAuthorizer (async check + sync cache)
//! ```
//!
//! | built-in | built from |
//! | --- | --- |
//! | [`BanAuthenticator`] over a shared [`BanList`] | [`BannedConfig`] |
//! | [`TlsIdentityAuthenticator`] | [`TlsIdentityConfig`] |
//! | [`PasswordFile`] | [`PasswordFileConfig`] |
//! | [`JwtAuthenticator`] | [`JwtConfig`] |
//! | [`HttpAuthenticator`] / [`HttpAuthorizer`] | [`HttpAuthConfig`] / [`HttpAclConfig`] |
//! | [`ScramAuthenticator`] | [`ScramConfig`] |
//! | [`AclFile`] | [`AclFileConfig`] |
//!
//! File-backed components (`PasswordFile`, `AclFile`, `ScramAuthenticator`)
//! load at startup, report malformed input as `path:line: what`, and have a
//! `reload()` that keeps the previous contents when the new file is bad.
//!
//! Secrets (passwords, tokens, hashes, SCRAM keys, configured keys) never
//! appear in `Debug` output or logs, and every secret comparison is constant
//! time. The file formats and config keys are described in `docs/auth.md`.
#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod cache;
mod error;
mod file;
mod http_client;
mod secret;

pub mod acl;
pub mod banned;
pub mod http;
pub mod jwt;
pub mod password;
pub mod scram;
pub mod tls_identity;

pub use acl::{AclFile, AclFileConfig, NoMatch};
pub use banned::{Ban, BanAuthenticator, BanList, BanTarget, BannedConfig};
pub use error::{ConfigError, FileError};
pub use file::write_atomically;
pub use http::{HttpAclConfig, HttpAuthConfig, HttpAuthenticator, HttpAuthorizer};
pub use jwt::{JwksConfig, JwtAuthenticator, JwtConfig};
pub use password::{PasswordFile, PasswordFileConfig, UnknownUser};
pub use scram::{Mechanism, ScramAuthenticator, ScramConfig, ScramCredentials};
pub use secret::Secret;
pub use tls_identity::{TlsIdentityAuthenticator, TlsIdentityConfig};
