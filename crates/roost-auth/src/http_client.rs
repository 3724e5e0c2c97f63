//! The HTTP client used for JWKS and HTTP auth: reqwest on rustls with the
//! ring provider (no aws-lc), with an optional private CA.

use std::path::Path;
use std::time::Duration;

use crate::ConfigError;

/// Builds a client with a request timeout. `ca_file` (PEM) replaces the
/// system roots when given. Installs ring as the process's rustls provider if
/// none is installed yet (the broker installs the same one at startup).
pub(crate) fn build(
    timeout: Duration,
    ca_file: Option<&Path>,
) -> Result<reqwest::Client, ConfigError> {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another installer is fine: a provider is then set.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| ConfigError::invalid(format!("{}: {e}", path.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            ConfigError::invalid(format!(
                "{}: not a PEM certificate bundle: {e}",
                path.display()
            ))
        })?;
        if certs.is_empty() {
            return Err(ConfigError::invalid(format!(
                "{}: no certificate found",
                path.display()
            )));
        }
        builder = builder.tls_certs_only(certs);
    }
    builder
        .build()
        .map_err(|e| ConfigError::invalid(format!("HTTP client: {e}")))
}

/// `scheme://host[:port]/path` of a URL, for logs and `Debug`: user info
/// and the query string (which may carry credentials) are left out.
pub(crate) fn loggable_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            match u.port() {
                Some(port) => format!("{}://{host}:{port}{}", u.scheme(), u.path()),
                None => format!("{}://{host}{}", u.scheme(), u.path()),
            }
        }
        Err(_) => "<invalid url>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loggable_url_drops_credentials_and_query() {
        assert_eq!(
            loggable_url("https://user:pw@auth.example:8443/check?key=s3cret"),
            "https://auth.example:8443/check"
        );
        assert_eq!(loggable_url("http://h/x"), "http://h/x");
    }
}
