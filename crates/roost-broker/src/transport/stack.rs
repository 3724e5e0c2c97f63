//! The transport stack of a stream listener, per connection:
//! [PROXY header] → [TLS] → [WebSocket upgrade]. Each step narrows the
//! [`ConnectionInfo`] (real client address, TLS identity) and hands a byte
//! stream to the next.

use std::net::SocketAddr;
use std::sync::Arc;

use super::config::{ListenerConfig, ListenerKind};
use super::prefixed::Prefixed;
use super::{BoxedStream, ConnectionInfo, PeerAddr, Reloadable, TlsStage, WsStage, proxy};

/// The steps of one listener, built once at bind time.
#[derive(Debug)]
pub(crate) struct Stack {
    proxy_protocol: bool,
    tls: Option<TlsStage>,
    ws: Option<WsStage>,
}

impl Stack {
    /// Builds the steps for a `tcp`, `tls`, `ws`, `wss` or `unix` listener
    /// (loads certificates); `name` is `scheme://address` for logs.
    pub(crate) fn new(config: &ListenerConfig, name: &str) -> Result<Self, String> {
        let tls = match (&config.tls, config.kind) {
            (Some(tls), ListenerKind::Tls | ListenerKind::Wss) => {
                Some(TlsStage::load(name.to_string(), tls, false)?)
            }
            _ => None,
        };
        let ws = if config.kind.uses_websocket() {
            Some(WsStage::new(&config.websocket)?)
        } else {
            None
        };
        Ok(Self {
            proxy_protocol: config.proxy_protocol,
            tls,
            ws,
        })
    }

    /// True when the socket goes to the driver as it is.
    pub(crate) fn is_plain(&self) -> bool {
        !self.proxy_protocol && self.tls.is_none() && self.ws.is_none()
    }

    /// The TLS reload handle, on TLS listeners.
    pub(crate) fn reloader(&self) -> Option<Arc<dyn Reloadable>> {
        self.tls.as_ref().map(TlsStage::reloader)
    }

    /// Starts watching certificate files, on TLS listeners.
    pub(crate) fn watch(&self, shutdown: tokio::sync::watch::Receiver<bool>) {
        if let Some(tls) = &self.tls {
            tls.watch(shutdown);
        }
    }

    /// Runs every step on a new connection. The caller bounds it with the
    /// listener's handshake timeout.
    pub(crate) async fn establish(
        &self,
        mut stream: BoxedStream,
        info: &mut ConnectionInfo,
    ) -> Result<BoxedStream, String> {
        if self.proxy_protocol {
            let (header, rest) = proxy::read_header(&mut stream)
                .await
                .map_err(|e| e.to_string())?;
            if let Some(source) = header.source {
                info.peer = PeerAddr::Inet(source);
                info.proxied = true;
            }
            stream = Box::new(Prefixed::new(rest, stream));
        }
        if let Some(tls) = &self.tls {
            let (secured, tls_info) = tls
                .accept(stream)
                .await
                .map_err(|e| format!("TLS handshake failed: {e}"))?;
            info.tls = Some(tls_info);
            stream = secured;
        }
        if let Some(ws) = &self.ws {
            let peer = match info.peer {
                PeerAddr::Inet(addr) => Some(addr),
                PeerAddr::Unix => None,
            };
            let (upgraded, forwarded) = ws.accept(stream, peer).await?;
            if let Some(ip) = forwarded {
                // The proxy reports an address, not the client's port.
                info.peer = PeerAddr::Inet(SocketAddr::new(ip, 0));
                info.proxied = true;
            }
            stream = upgraded;
        }
        Ok(stream)
    }
}
