//! TLS with rustls and the ring provider: the server configuration of a
//! `tls`, `wss` or `quic` listener built from its `[listeners.tls]` table
//! (certificates chosen by SNI, client certificates, CRLs, versions, cipher
//! suites, ALPN), and the accept step that runs the handshake and reads what
//! it negotiated.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::config::{TlsConfig, TlsVersion};
use super::{TlsInfo, identity};

/// A TLS configuration that could not be built; names the file or option.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct TlsError(pub(crate) String);

/// Builds the rustls server configuration of a listener. `quic` forces TLS
/// 1.3 and ALPN `mqtt` when none is configured.
pub(crate) fn server_config(config: &TlsConfig, quic: bool) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(provider(&config.cipher_suites)?);
    let versions: &[&'static SupportedProtocolVersion] =
        if quic || config.min_version == TlsVersion::Tls13 {
            &[&rustls::version::TLS13]
        } else {
            &[&rustls::version::TLS12, &rustls::version::TLS13]
        };
    let resolver = SniResolver::load(config, &provider)?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .map_err(|e| TlsError(format!("tls.cipher_suites / tls.min_version: {e}")))?;
    let verifier = match &config.ca_file {
        None => WebPkiClientVerifier::no_client_auth(),
        Some(ca_file) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs(ca_file, "tls.ca_file")? {
                roots
                    .add(cert)
                    .map_err(|e| TlsError(format!("tls.ca_file {}: {e}", ca_file.display())))?;
            }
            let mut verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
            if let Some(crl_file) = &config.crl_file {
                verifier = verifier.with_crls(read_crls(crl_file)?);
            }
            if !config.verify_peer {
                verifier = verifier.allow_unauthenticated();
            }
            verifier
                .build()
                .map_err(|e| TlsError(format!("client certificate verifier: {e}")))?
        }
    };
    let mut server = builder
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(resolver));
    server.alpn_protocols = config.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    if quic && server.alpn_protocols.is_empty() {
        server.alpn_protocols = vec![b"mqtt".to_vec()];
    }
    Ok(Arc::new(server))
}

/// The ring provider, limited to the configured cipher suites.
fn provider(suites: &[String]) -> Result<CryptoProvider, TlsError> {
    let mut provider = rustls::crypto::ring::default_provider();
    if suites.is_empty() {
        return Ok(provider);
    }
    let mut chosen = Vec::with_capacity(suites.len());
    for name in suites {
        let suite = provider
            .cipher_suites
            .iter()
            .find(|s| format!("{:?}", s.suite()).eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                let known: Vec<String> = provider
                    .cipher_suites
                    .iter()
                    .map(|s| format!("{:?}", s.suite()))
                    .collect();
                TlsError(format!(
                    "tls.cipher_suites: unknown suite `{name}` (known: {})",
                    known.join(", ")
                ))
            })?;
        chosen.push(*suite);
    }
    provider.cipher_suites = chosen;
    Ok(provider)
}

fn read_certs(path: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError(format!("{key} {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(TlsError(format!(
            "{key} {}: no PEM certificate in the file",
            path.display()
        )));
    }
    Ok(certs)
}

fn read_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    CertificateRevocationListDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError(format!("tls.crl_file {}: {e}", path.display())))
}

/// Loads a certificate chain and its private key, checking that they match.
fn certified_key(
    cert_file: &Path,
    key_file: &Path,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let certs = read_certs(cert_file, "tls.cert_file")?;
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| TlsError(format!("tls.key_file {}: {e}", key_file.display())))?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError(format!("tls.key_file {}: {e}", key_file.display())))?;
    let certified = CertifiedKey::new(certs, signing_key);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(Arc::new(certified))
        }
        Err(e) => Err(TlsError(format!(
            "tls.key_file {} does not belong to tls.cert_file {}: {e}",
            key_file.display(),
            cert_file.display()
        ))),
    }
}

/// Chooses the certificate by the server name the client sent; the default
/// certificate when it sent none or an unknown one.
#[derive(Debug)]
struct SniResolver {
    default: Arc<CertifiedKey>,
    /// (lower-case name or `*.suffix` pattern, certificate), in config order.
    by_name: Vec<(String, Arc<CertifiedKey>)>,
}

impl SniResolver {
    fn load(config: &TlsConfig, provider: &CryptoProvider) -> Result<Self, TlsError> {
        let default = certified_key(&config.cert_file, &config.key_file, provider)?;
        let mut by_name = Vec::new();
        for sni in &config.sni {
            let key = certified_key(&sni.cert_file, &sni.key_file, provider)?;
            let names = if sni.server_names.is_empty() {
                key.cert
                    .first()
                    .map(|leaf| identity::dns_names(leaf))
                    .unwrap_or_default()
            } else {
                sni.server_names
                    .iter()
                    .map(|n| n.to_ascii_lowercase())
                    .collect()
            };
            if names.is_empty() {
                return Err(TlsError(format!(
                    "tls.sni {}: no server_names given and the certificate names no DNS name",
                    sni.cert_file.display()
                )));
            }
            by_name.extend(names.into_iter().map(|name| (name, Arc::clone(&key))));
        }
        Ok(Self { default, by_name })
    }

    fn find(&self, server_name: &str) -> Option<&Arc<CertifiedKey>> {
        let name = server_name.to_ascii_lowercase();
        let exact = self.by_name.iter().find(|(pattern, _)| *pattern == name);
        exact
            .or_else(|| {
                self.by_name.iter().find(|(pattern, _)| {
                    pattern.strip_prefix("*.").is_some_and(|suffix| {
                        name.split_once('.')
                            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix)
                    })
                })
            })
            .map(|(_, key)| key)
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let chosen = hello.server_name().and_then(|name| self.find(name));
        Some(Arc::clone(chosen.unwrap_or(&self.default)))
    }
}

/// Runs the server handshake on `stream`.
pub(crate) async fn accept<S>(
    config: Arc<ServerConfig>,
    stream: S,
) -> std::io::Result<(TlsStream<S>, TlsInfo)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let tls = TlsAcceptor::from(config).accept(stream).await?;
    let (_, connection) = tls.get_ref();
    let info = TlsInfo {
        server_name: connection.server_name().map(str::to_owned),
        alpn: connection.alpn_protocol().map(<[u8]>::to_vec),
        identity: connection
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|leaf| identity::client_identity(leaf)),
    };
    Ok((tls, info))
}
