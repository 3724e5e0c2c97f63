//! MQTT over WebSocket: the HTTP upgrade (path, subprotocol, origin,
//! forwarding headers). The byte stream the driver reads is
//! [`roost_ws::WsStream`], shared with the load generator.

use std::net::{IpAddr, SocketAddr};

use roost_ws::WsStream;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::config::WebSocketOptions;
use super::http_head::{self, HeadError, RequestHead};
use super::prefixed::Prefixed;
use super::trusted::TrustedProxies;

/// The WebSocket settings of a listener, parsed once.
#[derive(Debug)]
pub(crate) struct WsSettings {
    options: WebSocketOptions,
    trusted: TrustedProxies,
    config: WebSocketConfig,
}

impl WsSettings {
    pub(crate) fn new(options: &WebSocketOptions) -> Self {
        let config = WebSocketConfig::default()
            .read_buffer_size(options.read_buffer_size)
            .max_frame_size(Some(options.max_frame_size))
            .max_message_size(Some(options.max_frame_size));
        Self {
            options: options.clone(),
            trusted: TrustedProxies::new(&options.trusted_proxies),
            config,
        }
    }
}

/// A refused upgrade, for the log.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WsRefused {
    /// No (complete) HTTP request.
    #[error("{0}")]
    Head(#[from] HeadError),
    /// Answered with an HTTP error status.
    #[error("HTTP {status}: {why}")]
    Status {
        /// The status sent.
        status: u16,
        /// Why.
        why: String,
    },
    /// The WebSocket handshake itself failed.
    #[error("WebSocket handshake failed: {0}")]
    Handshake(#[from] WsError),
}

/// An accepted WebSocket connection.
pub(crate) struct Upgraded<S> {
    pub(crate) stream: WsStream<Prefixed<Prefixed<S>>>,
    /// The client address from trusted forwarding headers.
    pub(crate) forwarded: Option<IpAddr>,
    /// The subprotocol agreed on.
    pub(crate) subprotocol: Option<String>,
}

/// Reads and checks the upgrade request, then completes the handshake.
// tungstenite's callback signature fixes the (large) error type.
#[allow(clippy::result_large_err)]
pub(crate) async fn accept<S>(
    settings: &WsSettings,
    mut stream: S,
    peer: Option<SocketAddr>,
) -> Result<Upgraded<S>, WsRefused>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (head, raw, rest) = match http_head::read(&mut stream).await {
        Ok(read) => read,
        Err(HeadError::Bad(why)) => {
            http_head::refuse(&mut stream, 400, "Bad Request", "", why).await;
            return Err(HeadError::Bad(why).into());
        }
        Err(e) => return Err(e.into()),
    };
    let subprotocol = match check(&settings.options, &head) {
        Ok(subprotocol) => subprotocol,
        Err(refusal) => {
            http_head::refuse(
                &mut stream,
                refusal.status,
                refusal.reason,
                refusal.headers,
                &refusal.why,
            )
            .await;
            return Err(WsRefused::Status {
                status: refusal.status,
                why: refusal.why,
            });
        }
    };
    let forwarded = match peer {
        Some(peer) if !settings.trusted.is_empty() => settings.trusted.client_ip(
            peer.ip(),
            head.header("x-forwarded-for"),
            head.header("x-real-ip"),
        ),
        _ => None,
    };
    // The head goes to tungstenite on its own; bytes the client sent after it
    // (frames sent without waiting for 101) follow once the handshake is done.
    let replay = Prefixed::new(raw, Prefixed::new(rest, stream));
    let chosen = subprotocol.clone();
    let callback =
        move |_request: &Request, mut response: Response| -> Result<Response, ErrorResponse> {
            if let Some(protocol) = chosen
                .as_deref()
                .and_then(|p| HeaderValue::from_str(p).ok())
            {
                response
                    .headers_mut()
                    .insert("Sec-WebSocket-Protocol", protocol);
            }
            Ok(response)
        };
    let ws =
        tokio_tungstenite::accept_hdr_async_with_config(replay, callback, Some(settings.config))
            .await?;
    Ok(Upgraded {
        stream: WsStream::new(ws),
        forwarded,
        subprotocol,
    })
}

/// An HTTP refusal.
struct Refusal {
    status: u16,
    reason: &'static str,
    headers: &'static str,
    why: String,
}

fn refusal(status: u16, reason: &'static str, why: String) -> Refusal {
    Refusal {
        status,
        reason,
        headers: "",
        why,
    }
}

/// Checks the upgrade request; returns the subprotocol to agree on.
fn check(options: &WebSocketOptions, head: &RequestHead) -> Result<Option<String>, Refusal> {
    if head.method != "GET" {
        return Err(refusal(
            405,
            "Method Not Allowed",
            format!("method {} is not GET", head.method),
        ));
    }
    if head.path != options.path {
        return Err(refusal(
            404,
            "Not Found",
            format!("path {} is not the MQTT path {}", head.path, options.path),
        ));
    }
    if !head.has_token("upgrade", "websocket") || !head.has_token("connection", "upgrade") {
        return Err(Refusal {
            status: 426,
            reason: "Upgrade Required",
            headers: "Upgrade: websocket\r\n",
            why: "not a WebSocket upgrade request".into(),
        });
    }
    if let Some(origin) = head.header("origin")
        && !options.allowed_origins.is_empty()
        && !options
            .allowed_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin))
    {
        return Err(refusal(
            403,
            "Forbidden",
            format!("origin {origin} is not allowed"),
        ));
    }
    let offered = head.tokens("sec-websocket-protocol");
    if offered.is_empty() {
        if options.require_subprotocol {
            return Err(refusal(
                400,
                "Bad Request",
                "no WebSocket subprotocol offered (expected mqtt)".into(),
            ));
        }
        return Ok(None);
    }
    // Our order of preference among the ones the client offers: `mqtt`
    // whenever it is offered [MQTT-6.0.0-4], `mqttv3.1` only for clients that
    // offer nothing better.
    let chosen = options
        .subprotocols
        .iter()
        .find_map(|ours| offered.iter().find(|o| o.eq_ignore_ascii_case(ours)));
    match chosen {
        Some(chosen) => Ok(Some(chosen.clone())),
        None => Err(refusal(
            400,
            "Bad Request",
            format!(
                "unsupported WebSocket subprotocol {} (supported: {})",
                offered.join(", "),
                options.subprotocols.join(", ")
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(lines: &[(&str, &str)]) -> RequestHead {
        RequestHead {
            method: "GET".into(),
            path: "/mqtt".into(),
            headers: lines
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    const UPGRADE: [(&str, &str); 2] = [("upgrade", "websocket"), ("connection", "Upgrade")];

    #[test]
    fn mqtt_6_0_0_4_mqtt_is_selected_whenever_offered() {
        let options = WebSocketOptions::default();
        let request = head(&[
            UPGRADE[0],
            UPGRADE[1],
            ("sec-websocket-protocol", "wamp, mqttv3.1, mqtt"),
        ]);
        assert_eq!(
            check(&options, &request).ok().flatten().as_deref(),
            Some("mqtt")
        );
        let old = head(&[
            UPGRADE[0],
            UPGRADE[1],
            ("sec-websocket-protocol", "mqttv3.1"),
        ]);
        assert_eq!(
            check(&options, &old).ok().flatten().as_deref(),
            Some("mqttv3.1")
        );
        let none = head(&UPGRADE);
        assert_eq!(
            check(&options, &none).ok(),
            Some(None),
            "no subprotocol offered: accepted unless required"
        );
        let strict = WebSocketOptions {
            require_subprotocol: true,
            ..WebSocketOptions::default()
        };
        assert_eq!(check(&strict, &none).err().map(|r| r.status), Some(400));
    }

    #[test]
    fn wrong_subprotocol_path_origin_and_plain_http_are_refused_with_a_status() {
        let options = WebSocketOptions {
            allowed_origins: vec!["https://app.example".into()],
            ..WebSocketOptions::default()
        };
        let wrong = head(&[UPGRADE[0], UPGRADE[1], ("sec-websocket-protocol", "chat")]);
        assert_eq!(check(&options, &wrong).err().map(|r| r.status), Some(400));
        let mut elsewhere = head(&UPGRADE);
        elsewhere.path = "/other".into();
        assert_eq!(
            check(&options, &elsewhere).err().map(|r| r.status),
            Some(404)
        );
        let plain = head(&[("host", "x")]);
        assert_eq!(check(&options, &plain).err().map(|r| r.status), Some(426));
        let foreign = head(&[UPGRADE[0], UPGRADE[1], ("origin", "https://evil.example")]);
        assert_eq!(check(&options, &foreign).err().map(|r| r.status), Some(403));
        let friendly = head(&[UPGRADE[0], UPGRADE[1], ("origin", "https://app.example")]);
        assert!(check(&options, &friendly).is_ok());
    }
}

/// The WebSocket step of a listener's stack.
#[derive(Debug, Clone)]
pub(crate) struct WsStage {
    settings: std::sync::Arc<WsSettings>,
}

impl WsStage {
    pub(crate) fn new(options: &WebSocketOptions) -> Result<Self, String> {
        Ok(Self {
            settings: std::sync::Arc::new(WsSettings::new(options)),
        })
    }

    /// Upgrades `stream`; returns the message stream and the client address
    /// reported by a trusted proxy, if any.
    pub(crate) async fn accept(
        &self,
        stream: super::BoxedStream,
        peer: Option<SocketAddr>,
    ) -> Result<(super::BoxedStream, Option<IpAddr>), String> {
        let upgraded = accept(&self.settings, stream, peer)
            .await
            .map_err(|e| e.to_string())?;
        tracing::trace!(subprotocol = ?upgraded.subprotocol, "WebSocket upgraded");
        Ok((
            Box::new(super::flush::FlushOnRead::new(upgraded.stream)),
            upgraded.forwarded,
        ))
    }
}
