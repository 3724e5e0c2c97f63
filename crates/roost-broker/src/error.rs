//! Why a broker could not start.

use crate::config::ListenAddr;

/// Errors starting a broker.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// A listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The configured address or socket path.
        addr: ListenAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A listener's transport cannot be set up (certificate files, TLS
    /// options, a transport left out of the build).
    #[error("listener {listener}: {message}")]
    Listener {
        /// `scheme://address` as configured.
        listener: String,
        /// What is wrong, naming the file or option.
        message: String,
    },
    /// A built-in authenticator or authorizer (`[auth]`) cannot be set up.
    #[error("{0}")]
    Auth(String),
    /// The session store (`[store]`) cannot be opened or restored: the data
    /// directory is locked, unreadable or of an unknown format, or Redis is
    /// unreachable. The message names the key and the directory or URL.
    #[error("{0}")]
    Store(String),
}
