//! One configured HTTP endpoint: request rendering, the call, and reading
//! the answer.

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::template::{Template, Vars};
use super::{BodyFormat, HttpMethod};
use crate::{ConfigError, Secret, http_client};

/// What the server decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allow {
        superuser: bool,
        expires_at: Option<SystemTime>,
    },
    Deny,
    Ignore,
}

/// The common settings of both HTTP configs.
pub(crate) struct EndpointSettings<'a> {
    pub(crate) url: &'a str,
    pub(crate) method: HttpMethod,
    pub(crate) body: BodyFormat,
    pub(crate) params: &'a [(String, String)],
    pub(crate) headers: &'a [(String, Secret)],
    pub(crate) timeout: Duration,
    pub(crate) ca_file: Option<&'a Path>,
    pub(crate) authz: bool,
}

pub(crate) struct Endpoint {
    url: reqwest::Url,
    method: HttpMethod,
    body: BodyFormat,
    params: Vec<(String, Template)>,
    headers: HeaderMap,
    client: reqwest::Client,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &http_client::loggable_url(self.url.as_str()))
            .field("method", &self.method)
            .field("body", &self.body)
            .field(
                "params",
                &self.params.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// A rendered request: parameter names and values (values may hold a password).
pub(crate) struct Rendered(Vec<(String, String)>);

impl Rendered {
    /// The rendered values, length-prefixed: a cache key that tells apart
    /// exactly the requests the service can tell apart (for authorization,
    /// where no password is rendered).
    pub(crate) fn key(&self) -> String {
        let mut key = String::new();
        for (_, v) in &self.0 {
            key.push_str(&v.len().to_string());
            key.push(':');
            key.push_str(v);
        }
        key
    }

    /// A digest of the request, used as a cache key so passwords are not
    /// kept in memory in clear.
    pub(crate) fn digest(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for (k, v) in &self.0 {
            h.update((k.len() as u64).to_be_bytes());
            h.update(k.as_bytes());
            h.update((v.len() as u64).to_be_bytes());
            h.update(v.as_bytes());
        }
        h.finalize().into()
    }
}

impl Endpoint {
    pub(crate) fn new(s: EndpointSettings<'_>) -> Result<Self, ConfigError> {
        let url = reqwest::Url::parse(s.url)
            .map_err(|e| ConfigError::invalid(format!("http auth: bad url {:?}: {e}", s.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConfigError::invalid(
                "http auth: the url must be http or https",
            ));
        }
        let mut params = Vec::new();
        for (name, value) in s.params {
            let t = Template::parse(value, s.authz)
                .map_err(|m| ConfigError::invalid(format!("http auth: parameter {name:?}: {m}")))?;
            params.push((name.clone(), t));
        }
        let mut headers = HeaderMap::new();
        for (name, value) in s.headers {
            let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ConfigError::invalid(format!("http auth: bad header name {name:?}"))
            })?;
            let mut v = HeaderValue::from_str(value.expose()).map_err(|_| {
                ConfigError::invalid(format!("http auth: bad value for header {name:?}"))
            })?;
            v.set_sensitive(true);
            headers.insert(n, v);
        }
        let client = http_client::build(s.timeout, s.ca_file)?;
        Ok(Self {
            url,
            method: s.method,
            body: s.body,
            params,
            headers,
            client,
        })
    }

    pub(crate) fn render(&self, vars: &Vars<'_>) -> Rendered {
        Rendered(
            self.params
                .iter()
                .map(|(k, t)| (k.clone(), t.render(vars)))
                .collect(),
        )
    }

    /// Calls the server. `Err` carries a loggable reason (never a parameter
    /// value: request errors are stripped of the URL, which may hold them).
    pub(crate) async fn call(&self, rendered: &Rendered) -> Result<Verdict, String> {
        let request = match self.method {
            HttpMethod::Get => {
                let mut url = self.url.clone();
                url.query_pairs_mut()
                    .extend_pairs(rendered.0.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                self.client.get(url)
            }
            HttpMethod::Post => {
                let request = self.client.post(self.url.clone());
                match self.body {
                    BodyFormat::Json => {
                        let map: serde_json::Map<String, serde_json::Value> = rendered
                            .0
                            .iter()
                            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                            .collect();
                        request.json(&map)
                    }
                    BodyFormat::Form => request.form(&rendered.0),
                }
            }
        };
        let response = request
            .headers(self.headers.clone())
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        let status = response.status().as_u16();
        let body = http_client::read_limited(response, MAX_ANSWER_BYTES).await?;
        interpret(status, &body)
    }

    /// The URL without user info or query, for logs.
    pub(crate) fn url(&self) -> String {
        http_client::loggable_url(self.url.as_str())
    }
}

/// The largest answer read from the service; a real one is a few dozen bytes.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// 2xx with an empty body (e.g. 204): allow. 2xx with a JSON object: its
/// `result` when there is one (`allow`/`deny`/`ignore`, with `is_superuser`
/// and `expire_at`), else allow. 4xx: deny. Anything else, including a 2xx
/// whose body is not a JSON object (an HTML page from a proxy or a wrong
/// URL), means the service is not working (`Err`): never an allow.
pub(crate) fn interpret(status: u16, body: &[u8]) -> Result<Verdict, String> {
    match status {
        200..=299 => {
            let json: Option<serde_json::Value> = if body.trim_ascii().is_empty() {
                None
            } else {
                match serde_json::from_slice(body) {
                    Ok(v @ serde_json::Value::Object(_)) => Some(v),
                    _ => {
                        return Err(format!(
                            "HTTP status {status} with a body that is not a JSON object"
                        ));
                    }
                }
            };
            let obj = json.as_ref().and_then(serde_json::Value::as_object);
            let superuser = obj
                .and_then(|o| o.get("is_superuser"))
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false);
            let expires_at = obj
                .and_then(|o| o.get("expire_at"))
                .and_then(serde_json::Value::as_u64)
                .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)));
            match obj.and_then(|o| o.get("result")) {
                None => Ok(Verdict::Allow {
                    superuser,
                    expires_at,
                }),
                Some(r) => match r.as_str() {
                    Some("allow") => Ok(Verdict::Allow {
                        superuser,
                        expires_at,
                    }),
                    Some("deny") => Ok(Verdict::Deny),
                    Some("ignore") => Ok(Verdict::Ignore),
                    _ => {
                        tracing::warn!(
                            status,
                            "http auth: unknown \"result\" in the response; denying"
                        );
                        Ok(Verdict::Deny)
                    }
                },
            }
        }
        400..=499 => Ok(Verdict::Deny),
        _ => Err(format!("HTTP status {status}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_map_to_verdicts() {
        let allow = Verdict::Allow {
            superuser: false,
            expires_at: None,
        };
        assert_eq!(interpret(200, b""), Ok(allow));
        assert_eq!(interpret(204, b""), Ok(allow));
        assert_eq!(interpret(200, br#"{"result":"deny"}"#), Ok(Verdict::Deny));
        assert_eq!(
            interpret(200, br#"{"result":"ignore"}"#),
            Ok(Verdict::Ignore)
        );
        assert_eq!(interpret(200, br#"{"result":"maybe"}"#), Ok(Verdict::Deny));
        assert_eq!(
            interpret(
                200,
                br#"{"result":"allow","is_superuser":true,"expire_at":10}"#
            ),
            Ok(Verdict::Allow {
                superuser: true,
                expires_at: Some(UNIX_EPOCH + Duration::from_secs(10))
            })
        );
        assert_eq!(interpret(403, b""), Ok(Verdict::Deny));
        assert!(interpret(500, b"").is_err());
        assert!(interpret(302, b"").is_err());
        // A 2xx that is not an answer of the service is not an allow.
        assert!(interpret(200, b"<html>Welcome to nginx!</html>").is_err());
        assert!(interpret(200, b"ok").is_err());
        assert!(interpret(200, b"true").is_err());
        assert!(interpret(200, br#"["allow"]"#).is_err());
        assert_eq!(interpret(200, b"{}"), Ok(allow));
        assert_eq!(interpret(200, b" \r\n"), Ok(allow));
    }
}
