//! The HTTP side of `roost ctl`: where the API is, which key to send, and
//! one request per command (reqwest on rustls/ring, a current-thread
//! runtime for the one call).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

/// Default endpoint: the server's default `[http] bind`.
const DEFAULT_URL: &str = "http://127.0.0.1:18083";
/// A request that takes longer fails.
const TIMEOUT: Duration = Duration::from_secs(30);

/// `~/.config/roost/ctl.toml`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CtlFile {
    url: Option<String>,
    key: Option<String>,
}

fn ctl_file_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("roost").join("ctl.toml"))
}

fn ctl_file() -> Result<CtlFile, String> {
    let Some(path) = ctl_file_path() else {
        return Ok(CtlFile::default());
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CtlFile::default()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Percent-encodes one path segment or query value (RFC 3986 unreserved
/// characters kept).
pub(crate) fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The API endpoint and credentials.
#[derive(Debug)]
pub(crate) struct Client {
    base: String,
    key: Option<(String, String)>,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl Client {
    /// Flags first, then `ROOST_CTL_URL` / `ROOST_CTL_KEY`, then ctl.toml.
    pub(crate) fn new(url: Option<&str>, key: Option<&str>) -> Result<Self, String> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let file = if url.is_none() || key.is_none() {
            ctl_file()?
        } else {
            CtlFile::default()
        };
        let base = url
            .map(str::to_string)
            .or_else(|| env("ROOST_CTL_URL"))
            .or(file.url)
            .unwrap_or_else(|| DEFAULT_URL.to_string());
        let key = key
            .map(str::to_string)
            .or_else(|| env("ROOST_CTL_KEY"))
            .or(file.key)
            .map(|k| {
                k.split_once(':')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| {
                        "the key is `key:secret` (as printed by roost ctl api-key create)"
                            .to_string()
                    })
            })
            .transpose()?;
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("runtime: {e}"))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            key,
            http,
            runtime,
        })
    }

    fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, String), String> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url);
        if let Some((key, secret)) = &self.key {
            request = request.basic_auth(key, Some(secret));
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        self.runtime.block_on(async {
            let response = request
                .send()
                .await
                .map_err(|e| format!("{}: {}", self.base, e.without_url()))?;
            let status = response.status().as_u16();
            let text = response
                .text()
                .await
                .map_err(|e| e.without_url().to_string())?;
            Ok((status, text))
        })
    }

    fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        let (status, text) = self.send(method, path, body)?;
        if !(200..300).contains(&status) {
            let error: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let code = error["code"].as_str().unwrap_or("");
            let message = error["message"].as_str().unwrap_or(text.as_str());
            let hint = if status == 401 {
                "\n  (give an API key with --key KEY:SECRET or ROOST_CTL_KEY; create one with `roost ctl api-key create`)"
            } else {
                ""
            };
            return Err(format!("{status} {code}: {message}{hint}"));
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| format!("the answer is not JSON: {e}"))
    }

    /// GET, JSON answer.
    pub(crate) fn get(&self, path: &str) -> Result<Value, String> {
        self.call(reqwest::Method::GET, path, None)
    }

    /// POST a JSON body.
    pub(crate) fn post(&self, path: &str, body: &Value) -> Result<Value, String> {
        self.call(reqwest::Method::POST, path, Some(body))
    }

    /// PUT a JSON body.
    pub(crate) fn put(&self, path: &str, body: &Value) -> Result<Value, String> {
        self.call(reqwest::Method::PUT, path, Some(body))
    }

    /// DELETE.
    pub(crate) fn delete(&self, path: &str) -> Result<Value, String> {
        self.call(reqwest::Method::DELETE, path, None)
    }

    /// GET, text answer (metrics).
    pub(crate) fn text(&self, path: &str) -> Result<String, String> {
        let (status, text) = self.send(reqwest::Method::GET, path, None)?;
        if (200..300).contains(&status) {
            Ok(text)
        } else {
            Err(format!("{status}: {text}"))
        }
    }
}
