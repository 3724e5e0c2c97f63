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

/// The body of `response`, refused (an error) beyond `limit` bytes: a
/// service that answers with more than any real answer holds is broken or
/// hostile, and reading it all would let it fill the broker's memory.
pub(crate) async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, String> {
    let too_large = || format!("the answer is larger than {limit} bytes");
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| e.without_url().to_string())?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
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
