//! Listeners: bind every configured transport, announce it, and accept until
//! shutdown. Each accepted connection passes admission (connection limits,
//! connect rate), its transport stack (PROXY header, TLS, WebSocket) within
//! the handshake timeout, then goes to the one connection driver. No protocol
//! logic lives here.

#[cfg(feature = "quic")]
mod quic;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::admission::{ConnectionPermit, Gate};
use crate::config::{Config, DEFER_ACCEPT_SECS, ListenAddr, ListenerConfig, ListenerKind};
use crate::core::Core;
use crate::driver;
use crate::error::BrokerError;
use crate::listener_stats::Refused;
use crate::metrics::Metrics;
use crate::transport::stack::Stack;
use crate::transport::{ConnectionInfo, ListenerError, PeerAddr, QuicListener, Reloadable};

/// Accepts in a row before the listener lets the connections it spawned run:
/// during a connection storm, accepting until the backlog is empty (or the
/// task's budget, 128, runs out) made the first clients wait for the CONNACK
/// behind a hundred accepts and spawns (docs/performance.md §5).
const ACCEPT_BURST: u32 = 8;

/// Pause after a failed `accept` (EMFILE and friends) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Where a listener ended up listening.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BoundAddress {
    /// The transport.
    pub kind: ListenerKind,
    /// The bound address (the real port when 0 was configured) or socket path.
    pub addr: ListenAddr,
    /// The URL clients use, as logged: `mqtt://127.0.0.1:1883`, `ws://127.0.0.1:8083/mqtt`.
    pub url: String,
}

/// A bound listener, ready to accept.
#[derive(Debug)]
pub(crate) struct BoundListener {
    pub(crate) config: Arc<ListenerConfig>,
    pub(crate) address: BoundAddress,
    socket: Socket,
}

#[derive(Debug)]
enum Socket {
    /// TCP or Unix sockets with their transport stack.
    Stream {
        accept: StreamSocket,
        stack: Arc<Stack>,
    },
    /// A QUIC endpoint.
    Quic(QuicListener),
}

#[derive(Debug)]
enum StreamSocket {
    Tcp(TcpListener),
    #[cfg(unix)]
    Unix(crate::transport::unix::UnixSocket),
}

/// One accepted stream socket.
enum Accepted {
    Tcp(TcpStream, SocketAddr),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

impl BoundListener {
    /// Binds the socket and loads what the transport needs (certificates).
    pub(crate) async fn bind(config: ListenerConfig, broker: &Config) -> Result<Self, BrokerError> {
        let configured = config.bind.clone();
        let refuse = |e: ListenerError| match e {
            ListenerError::Io(source) => BrokerError::Bind {
                addr: configured.clone(),
                source,
            },
            ListenerError::Config(message) => BrokerError::Listener {
                listener: format!("{}://{}", config.kind.scheme(), configured),
                message,
            },
        };
        let name = format!("{}://{}", config.kind.scheme(), configured);
        let (socket, local) = match (&config.bind, config.kind) {
            (ListenAddr::Inet(addr), ListenerKind::Quic) => {
                let quic = QuicListener::bind(&config, broker.mqtt.max_keep_alive, *addr, name)
                    .map_err(refuse)?;
                let local = quic.local_addr();
                (Socket::Quic(quic), ListenAddr::Inet(local))
            }
            (ListenAddr::Inet(addr), _) => {
                let stack =
                    Stack::new(&config, &name).map_err(|m| refuse(ListenerError::Config(m)))?;
                let tcp = if config.reuse_port {
                    bind_reuse_port(*addr)
                } else {
                    TcpListener::bind(addr).await
                }
                .map_err(|e| refuse(e.into()))?;
                if config.defer_accept {
                    defer_accept(&tcp, &name);
                }
                let local = tcp.local_addr().map_err(|e| refuse(e.into()))?;
                (
                    Socket::Stream {
                        accept: StreamSocket::Tcp(tcp),
                        stack: Arc::new(stack),
                    },
                    ListenAddr::Inet(local),
                )
            }
            #[cfg(unix)]
            (ListenAddr::Unix(path), _) => {
                let stack =
                    Stack::new(&config, &name).map_err(|m| refuse(ListenerError::Config(m)))?;
                let unix = crate::transport::unix::UnixSocket::bind(path)
                    .await
                    .map_err(|e| refuse(e.into()))?;
                (
                    Socket::Stream {
                        accept: StreamSocket::Unix(unix),
                        stack: Arc::new(stack),
                    },
                    ListenAddr::Unix(path.clone()),
                )
            }
            #[cfg(not(unix))]
            (ListenAddr::Unix(_), _) => {
                return Err(refuse(ListenerError::Config(
                    "Unix domain sockets need a Unix system".into(),
                )));
            }
        };
        let path = if config.kind.uses_websocket() {
            config.websocket.path.as_str()
        } else {
            ""
        };
        let url = format!("{}://{}{}", config.kind.scheme(), local, path);
        Ok(Self {
            address: BoundAddress {
                kind: config.kind,
                addr: local,
                url,
            },
            config: Arc::new(config),
            socket,
        })
    }

    /// The TLS reload handle of a TLS-based listener.
    pub(crate) fn reloader(&self) -> Option<Arc<dyn Reloadable>> {
        match &self.socket {
            Socket::Stream { stack, .. } => stack.reloader(),
            Socket::Quic(quic) => Some(quic.reloader()),
        }
    }

    /// Logs `listening on <url> (anonymous clients allowed|refused)`.
    pub(crate) fn announce(&self) {
        let anonymous = if self.config.anonymous_allowed() {
            "allowed"
        } else {
            "refused"
        };
        tracing::info!(
            "listening on {} (anonymous clients {anonymous})",
            self.address.url
        );
    }

    /// Accepts until shutdown.
    pub(crate) async fn run(self, core: Arc<Core>) {
        match self.socket {
            #[cfg(feature = "quic")]
            Socket::Quic(quic) => quic::run(quic, core, self.config).await,
            #[cfg(not(feature = "quic"))]
            Socket::Quic(quic) => match quic {},
            Socket::Stream { accept, stack } => {
                run_stream(core, self.config, accept, stack, self.address).await
            }
        }
    }
}

/// Asks the kernel to hand over a connection only once its client has
/// spoken (`defer_accept`). Where the option does not exist the listener
/// works as without it, woken once more per connection.
fn bind_reuse_port(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does on Unix, plus SO_REUSEPORT: every process
    // bound this way to the same address shares its connections.
    socket.set_reuseaddr(true)?;
    #[cfg(unix)]
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

fn defer_accept(tcp: &TcpListener, name: &str) {
    match roost_sys::set_tcp_defer_accept(tcp, DEFER_ACCEPT_SECS) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {
            tracing::debug!(listener = name, "TCP_DEFER_ACCEPT is not available here");
        }
        Err(e) => tracing::warn!(listener = name, error = %e, "could not set TCP_DEFER_ACCEPT"),
    }
}

/// Announces every listener. TCP listeners come last: test harnesses wait for
/// the first `listening on mqtt://` line, and by then every other listener's
/// line has been written too.
pub(crate) fn announce_all(listeners: &[BoundListener]) {
    let (tcp, others): (Vec<_>, Vec<_>) = listeners
        .iter()
        .partition(|l| l.config.kind == ListenerKind::Tcp);
    for listener in others.into_iter().chain(tcp) {
        listener.announce();
    }
}

async fn run_stream(
    core: Arc<Core>,
    config: Arc<ListenerConfig>,
    accept: StreamSocket,
    stack: Arc<Stack>,
    address: BoundAddress,
) {
    // Before the first client: growing the descriptor table later stalls
    // accept for milliseconds per doubling (transport/fd_table.rs).
    #[cfg(unix)]
    match &accept {
        StreamSocket::Tcp(tcp) => crate::transport::fd_table::grow_once(tcp),
        StreamSocket::Unix(unix) => crate::transport::fd_table::grow_once(unix),
    }
    let gate = Gate::new(
        Arc::clone(&core.metrics),
        core.config.limits.max_connections,
        &config,
    );
    gate.register(
        &core.listener_stats,
        address.url.clone(),
        config.kind.to_string(),
    );
    let mut shutdown = core.shutdown.subscribe();
    stack.watch(core.shutdown.subscribe());
    let mut in_a_row = 0u32;
    loop {
        in_a_row += 1;
        if in_a_row > ACCEPT_BURST {
            in_a_row = 0;
            tokio::task::yield_now().await;
        }
        let accepted = tokio::select! {
            // `wait_for` also sees a shutdown begun before this task subscribed.
            _ = shutdown.wait_for(|down| *down) => break,
            accepted = accept_one(&accept) => accepted,
        };
        let accepted = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(listener = %address.url, error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let ticket = match gate.admit() {
            Ok(ticket) => ticket,
            Err(refusal) => {
                let peer = match &accepted {
                    Accepted::Tcp(_, peer) => PeerAddr::Inet(*peer),
                    #[cfg(unix)]
                    Accepted::Unix(_) => PeerAddr::Unix,
                };
                tracing::info!(%peer, listener = %address.url, open = gate.open(), %refusal, "refusing connection");
                continue;
            }
        };
        let (core, config) = (Arc::clone(&core), Arc::clone(&config));
        match accepted {
            Accepted::Tcp(stream, peer) if stack.is_plain() => {
                // Plain TCP keeps its concrete type (no boxing on the hot
                // path) and its task is the driver's future itself, with no
                // wrapper around it: that future is what an idle connection
                // costs.
                let _ = stream.set_nodelay(true);
                let info = ConnectionInfo::new(PeerAddr::Inet(peer), config.kind);
                tokio::spawn(driver::serve(core, config, stream, info, Some(ticket)));
            }
            accepted => {
                let stack = Arc::clone(&stack);
                tokio::spawn(serve_stream(core, config, stack, accepted, ticket));
            }
        }
    }
}

async fn accept_one(socket: &StreamSocket) -> std::io::Result<Accepted> {
    match socket {
        StreamSocket::Tcp(tcp) => tcp
            .accept()
            .await
            .map(|(stream, peer)| Accepted::Tcp(stream, peer)),
        #[cfg(unix)]
        StreamSocket::Unix(unix) => unix.accept().await.map(Accepted::Unix),
    }
}

/// A connection that goes through its transport stack (PROXY header, TLS,
/// WebSocket, Unix sockets) before the driver.
async fn serve_stream(
    core: Arc<Core>,
    config: Arc<ListenerConfig>,
    stack: Arc<Stack>,
    accepted: Accepted,
    ticket: ConnectionPermit,
) {
    let (stream, info): (crate::transport::BoxedStream, _) = match accepted {
        Accepted::Tcp(stream, peer) => {
            let _ = stream.set_nodelay(true);
            let info = ConnectionInfo::new(PeerAddr::Inet(peer), config.kind);
            (Box::new(stream), info)
        }
        #[cfg(unix)]
        Accepted::Unix(stream) => (
            Box::new(stream),
            ConnectionInfo::new(PeerAddr::Unix, config.kind),
        ),
    };
    establish_and_serve(core, config, &stack, stream, info, ticket).await;
}

async fn establish_and_serve(
    core: Arc<Core>,
    config: Arc<ListenerConfig>,
    stack: &Stack,
    stream: crate::transport::BoxedStream,
    mut info: ConnectionInfo,
    ticket: ConnectionPermit,
) {
    let socket_peer = info.peer;
    // Boxed: the TLS / WebSocket handshake state is not needed afterwards.
    let established = Box::pin(tokio::time::timeout(
        config.handshake_timeout(),
        stack.establish(stream, &mut info),
    ))
    .await;
    match established {
        Ok(Ok(stream)) => driver::serve(core, config, stream, info, Some(ticket)).await,
        Ok(Err(why)) => {
            Metrics::inc(&core.metrics.connections_refused);
            ticket.refused(Refused::Transport);
            tracing::debug!(peer = %socket_peer, listener = %config.kind, %why, "connection refused by its transport");
        }
        Err(_) => {
            Metrics::inc(&core.metrics.connections_refused);
            ticket.refused(Refused::Transport);
            tracing::debug!(peer = %socket_peer, listener = %config.kind, timeout = ?config.handshake_timeout(), "transport handshake timed out");
        }
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The `TCP_DEFER_ACCEPT` period the kernel holds for a bound TCP listener.
    async fn deferral_of(defer_accept: bool) -> u32 {
        let mut config = ListenerConfig::loopback(0);
        config.defer_accept = defer_accept;
        let bound = BoundListener::bind(config, &Config::default())
            .await
            .unwrap();
        match &bound.socket {
            Socket::Stream {
                accept: StreamSocket::Tcp(tcp),
                ..
            } => roost_sys::tcp_defer_accept(tcp).unwrap(),
            _ => panic!("a tcp listener binds a TCP socket"),
        }
    }

    #[tokio::test]
    async fn two_listeners_with_reuse_port_share_one_port() {
        let mut config = ListenerConfig::loopback(0);
        config.reuse_port = true;
        let first = BoundListener::bind(config.clone(), &Config::default())
            .await
            .unwrap();
        let port = first.address.addr.inet().unwrap().port();
        config.bind.set_port(port);
        let second = BoundListener::bind(config.clone(), &Config::default()).await;
        assert!(second.is_ok(), "SO_REUSEPORT lets a second socket bind");
        config.reuse_port = false;
        assert!(
            BoundListener::bind(config, &Config::default())
                .await
                .is_err(),
            "without it the port is taken"
        );
    }

    #[tokio::test]
    async fn a_tcp_listener_defers_accept_unless_configured_not_to() {
        assert!(ListenerConfig::loopback(0).defer_accept, "on by default");
        assert_eq!(deferral_of(true).await, DEFER_ACCEPT_SECS);
        assert_eq!(deferral_of(false).await, 0);
    }
}
