//! The subject of a client certificate as an MQTT identity: its Common Name,
//! or its whole distinguished name in RFC 4514 form (most specific RDN
//! first, like OpenSSL's `-nameopt RFC2253` that Mosquitto uses):
//! `CN=sensor-1,OU=plant,O=Acme,C=DE`.

use std::fmt::Write as _;

use x509_parser::objects::{oid_registry, oid2abbrev};
use x509_parser::oid_registry::OID_PKCS9_EMAIL_ADDRESS;
use x509_parser::prelude::{GeneralName, X509Certificate, X509Name};

use super::ClientIdentity;

/// The identity of a DER certificate; None when it does not parse (it was
/// verified by rustls first, so that does not happen for a client's).
pub(crate) fn client_identity(der: &[u8]) -> Option<ClientIdentity> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let common_name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    Some(ClientIdentity {
        common_name,
        subject_dn: rfc4514(subject),
    })
}

/// The DNS names a certificate is valid for (SAN entries, else its CN).
pub(crate) fn dns_names(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let names = san_dns_names(&cert);
    if !names.is_empty() {
        return names;
    }
    cert.subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .map(str::to_ascii_lowercase)
        .collect()
}

fn san_dns_names(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(dns.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

/// RFC 4514 string of a name: RDNs in reverse order joined by `,`, the
/// attributes of a multi-valued RDN joined by `+`, special characters escaped.
fn rfc4514(name: &X509Name<'_>) -> String {
    let registry = oid_registry();
    let mut out = String::new();
    for (i, rdn) in name
        .iter()
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .enumerate()
    {
        if i > 0 {
            out.push(',');
        }
        for (j, attr) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            let oid = attr.attr_type();
            if *oid == OID_PKCS9_EMAIL_ADDRESS {
                out.push_str("emailAddress");
            } else {
                match oid2abbrev(oid, registry) {
                    Ok(short) => out.push_str(short),
                    Err(_) => out.push_str(&oid.to_id_string()),
                }
            }
            out.push('=');
            match attr.as_str() {
                Ok(value) => escape_value(value, &mut out),
                Err(_) => {
                    // Not a string type: RFC 4514 §2.4 hex form of the DER value.
                    out.push('#');
                    for byte in attr.attr_value().data.iter() {
                        let _ = write!(out, "{byte:02x}");
                    }
                }
            }
        }
    }
    out
}

/// RFC 4514 §2.4 escaping of an attribute value.
fn escape_value(value: &str, out: &mut String) {
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn certificate(subject: &[(rcgen::DnType, &str)], dns: &[&str]) -> Vec<u8> {
        let names: Vec<String> = dns.iter().map(|s| s.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (ty, value) in subject {
            params.distinguished_name.push(ty.clone(), *value);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn subject_dn_is_rfc_4514_most_specific_first() {
        let der = certificate(
            &[
                (rcgen::DnType::CountryName, "DE"),
                (rcgen::DnType::OrganizationName, "Acme, Inc"),
                (rcgen::DnType::CommonName, "sensor-1"),
            ],
            &[],
        );
        let identity = client_identity(&der).unwrap();
        assert_eq!(identity.common_name.as_deref(), Some("sensor-1"));
        assert_eq!(identity.subject_dn, "CN=sensor-1,O=Acme\\, Inc,C=DE");
    }

    #[test]
    fn certificate_without_cn_has_a_dn_only() {
        let der = certificate(&[(rcgen::DnType::OrganizationName, "Acme")], &[]);
        let identity = client_identity(&der).unwrap();
        assert_eq!(identity.common_name, None);
        assert_eq!(identity.subject_dn, "O=Acme");
        assert_eq!(
            identity.as_configured(super::super::config::IdentitySource::Cn),
            None
        );
    }

    #[test]
    fn dns_names_come_from_the_san_extension() {
        let der = certificate(
            &[(rcgen::DnType::CommonName, "ignored")],
            &["A.example", "b.example"],
        );
        assert_eq!(dns_names(&der), ["a.example", "b.example"]);
    }

    #[test]
    fn escaping_follows_rfc_4514() {
        let mut out = String::new();
        escape_value(" #a,b+c\"d\\e<f>g;h ", &mut out);
        assert_eq!(out, "\\ #a\\,b\\+c\\\"d\\\\e\\<f\\>g\\;h\\ ");
        let mut out = String::new();
        escape_value("#x", &mut out);
        assert_eq!(out, "\\#x");
    }
}
