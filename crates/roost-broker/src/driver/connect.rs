//! The CONNECT phase of a connection: read CONNECT within the connect
//! timeout, check it, run enhanced authentication, then attach to the
//! client id's session (resume, takeover or fresh).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use roost_codec::{
    Auth, AuthProperties, Connect, ConnectReturnCode, DecodeError, Decoder, Encoder, Packet,
    ProtocolVersion, ReasonCode,
};
use roost_hooks::{Action, AuthResult, AuthStep, ClientInfo, ConnectRequest, Decision, Grant};
use roost_session::{AuthSuccess, Message, Session, SessionState, check_connect, connack_refusal};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;

use crate::config::ListenerConfig;
use crate::core::Core;
use crate::link::Control;
use crate::metrics::Metrics;
use crate::slot::{Handover, Link, SessionSlot};
use crate::transport::ConnectionInfo;

/// How long a taken-over connection has to hand its session over.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection that passed CONNECT and owns its session.
pub(crate) struct Attached {
    pub(crate) session: Session,
    pub(crate) slot: Arc<SessionSlot>,
    pub(crate) connection_id: u64,
    pub(crate) control: crate::link::ControlReceiver,
    pub(crate) decoder: Decoder,
    pub(crate) client: Arc<ClientInfo>,
    pub(crate) grant: Grant,
}

/// What the CONNECT said, for the operator's connect and refusal log lines
/// (filled as soon as CONNECT decodes; the password is never kept).
#[derive(Debug, Default)]
pub(crate) struct Seen {
    pub(crate) client_id: Option<ByteString>,
    pub(crate) username: Option<ByteString>,
    pub(crate) version: Option<ProtocolVersion>,
    pub(crate) clean_start: bool,
    pub(crate) keep_alive: u16,
}

impl Seen {
    /// What `connect` says (before a certificate's identity may replace
    /// its user name or client id).
    fn of(connect: &Connect) -> Self {
        Self {
            client_id: Some(ByteString::from(&*connect.client_id)),
            username: connect.username.as_deref().map(ByteString::from),
            version: Some(connect.protocol),
            clean_start: connect.clean_start,
            keep_alive: connect.keep_alive,
        }
    }
}

/// Why the CONNECT phase ended without a session.
pub(crate) enum Refused {
    /// Socket closed, timed out or sent garbage; nothing more to send.
    Silent(&'static str),
    /// A CONNACK with this refusal was (or should be) sent.
    ConnAck(ReasonCode),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Silent(why) => f.write_str(why),
            Self::ConnAck(reason) => write!(f, "CONNACK {reason}"),
        }
    }
}

/// Reads bytes until one packet decodes.
async fn read_packet<R: AsyncRead + Unpin>(
    metrics: &Metrics,
    reader: &mut R,
    decoder: &mut Decoder,
    rbuf: &mut BytesMut,
) -> Result<Packet, Option<DecodeError>> {
    loop {
        match decoder.decode(rbuf) {
            Ok(Some(packet)) => return Ok(packet),
            Ok(None) => {}
            Err(e) => return Err(Some(e)),
        }
        rbuf.reserve(4096);
        match reader.read_buf(rbuf).await {
            Ok(0) | Err(_) => return Err(None),
            Ok(n) => Metrics::add(&metrics.bytes_received, n),
        }
    }
}

/// Sends a refusing CONNACK in the client's version. The reason goes through
/// the session's CONNACK table: a code CONNACK cannot carry (e.g. one an
/// authentication mechanism chose) becomes 0x80 [MQTT-3.2.2-8].
async fn refuse<W: AsyncWrite + Unpin>(
    writer: &mut W,
    version: ProtocolVersion,
    reason: ReasonCode,
) {
    if !version.is_v5() && ConnectReturnCode::try_from_reason(reason).is_none() {
        // 3.x: no return code applies, so close without a CONNACK
        // [MQTT-3.2.2-6 (3.1.1)] rather than claim e.g. "server unavailable".
        return;
    }
    let connect = Connect {
        protocol: version,
        ..Connect::default()
    };
    let connack = Packet::ConnAck(connack_refusal(&connect, reason, None, None));
    let mut buf = BytesMut::new();
    if Encoder::new(version).encode(&connack, &mut buf).is_ok() {
        let _ = writer.write_all(&buf).await;
        let _ = writer.flush().await;
    }
}

/// Refuses with the client's CONNECT at hand, so that a hook's Reason
/// String goes out (5.0, unless the client turned problem information off).
async fn refuse_explained<W: AsyncWrite + Unpin>(
    writer: &mut W,
    connect: &Connect,
    reason: ReasonCode,
    reason_string: Option<&str>,
) {
    if !connect.protocol.is_v5() {
        refuse(writer, connect.protocol, reason).await;
        return;
    }
    let connack = Packet::ConnAck(connack_refusal(connect, reason, reason_string, None));
    let mut buf = BytesMut::new();
    if Encoder::new(connect.protocol)
        .encode(&connack, &mut buf)
        .is_ok()
    {
        let _ = writer.write_all(&buf).await;
        let _ = writer.flush().await;
    }
}

/// The redirection reason code, when redirection is configured.
fn redirect_reason(core: &Core) -> Option<ReasonCode> {
    match core.config.mqtt.redirect.mode {
        crate::config::RedirectMode::None => None,
        crate::config::RedirectMode::UseAnotherServer => Some(ReasonCode::USE_ANOTHER_SERVER),
        crate::config::RedirectMode::ServerMoved => Some(ReasonCode::SERVER_MOVED),
    }
}

/// Runs the whole CONNECT phase: read CONNECT, admit it, name the client,
/// authenticate, let the hooks and the publish gate approve, claim the
/// session, open it. Each step either moves on or ends the phase with a
/// refusal (a CONNACK, when one can be sent).
pub(crate) async fn handshake<R, W>(
    core: &Arc<Core>,
    listener: &ListenerConfig,
    info: &ConnectionInfo,
    reader: &mut R,
    writer: &mut W,
    rbuf: &mut BytesMut,
    seen: &mut Seen,
) -> Result<Attached, Refused>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut decoder = Decoder::server(core.config.mqtt.max_packet_size);
    let mut connect = read_connect(core, info, &mut decoder, reader, writer, rbuf).await?;
    *seen = Seen::of(&connect);
    let certified = admit(core, listener, info, &mut connect, writer).await?;
    let (client_id, assigned) = own_client_id(&mut connect);
    let mut client = client_info(info, &connect, &client_id);
    // Enhanced authentication (an AUTH exchange) when the client names a
    // method, otherwise the authenticator chain and the anonymous policy.
    let (auth, grant) = match connect.properties.authentication_method.clone() {
        Some(method) => {
            let exchange = enhanced_auth(
                core,
                &connect,
                &client,
                method,
                &mut decoder,
                reader,
                writer,
                rbuf,
            );
            let (success, grant) = exchange.await?;
            (Some(success), grant)
        }
        None => {
            let grant = authenticate(core, listener, info, certified, &connect, &client, writer);
            (None, grant.await?)
        }
    };
    if let Some(name) = &grant.username {
        client.username = Some(ByteString::from(name.as_str()));
    }
    let client = Arc::new(client);
    approve(core, info, &connect, &client, &grant, writer).await?;
    let now = Instant::now();
    let mut claimed = claim_session(core, info, &connect, &client, &grant, writer, now).await?;
    let session = open_session(core, connect, assigned, auth, &client, &mut claimed, now).await;
    Ok(Attached {
        session,
        slot: claimed.slot,
        connection_id: claimed.connection_id,
        control: claimed.control,
        decoder,
        client,
        grant,
    })
}

/// Reads the first packet within the connect timeout; anything but a
/// well-formed CONNECT ends the phase. An unsupported protocol level gets
/// CONNACK 0x84 / return code 1 [MQTT-3.1.2-2], another malformed 5.0
/// CONNECT its reason code; the rest is closed without a word.
async fn read_connect<R, W>(
    core: &Core,
    info: &ConnectionInfo,
    decoder: &mut Decoder,
    reader: &mut R,
    writer: &mut W,
    rbuf: &mut BytesMut,
) -> Result<Connect, Refused>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let first = tokio::time::timeout(
        core.config.connect_timeout(),
        read_packet(&core.metrics, reader, decoder, rbuf),
    )
    .await;
    match first {
        Err(_) => Err(Refused::Silent("no CONNECT within the connect timeout")),
        Ok(Err(None)) => Err(Refused::Silent("closed before CONNECT")),
        Ok(Err(Some(e))) => {
            let reason = ReasonCode::from(&e);
            tracing::debug!(peer = %info.peer, error = %e, "bad CONNECT");
            if reason == ReasonCode::UNSUPPORTED_PROTOCOL_VERSION {
                refuse(writer, ProtocolVersion::V311, reason).await;
                return Err(Refused::ConnAck(reason));
            }
            if let Some(version) = decoder.version().filter(|v| v.is_v5()) {
                refuse(writer, version, reason).await;
                return Err(Refused::ConnAck(reason));
            }
            Err(Refused::Silent("malformed CONNECT"))
        }
        Ok(Ok(Packet::Connect(connect))) => Ok(*connect),
        Ok(Ok(_)) => Err(Refused::Silent("first packet is not CONNECT")),
    }
}

/// Checks CONNECT before anyone is asked about the client: a client
/// certificate's identity may stand in for the user name / client id, the
/// session's rules ([`check_connect`]), server redirection [MQTT-4.11] (a
/// refusal with a Server Reference), and a broker shutting down. True when
/// the verified certificate is the credential.
async fn admit<W: AsyncWrite + Unpin>(
    core: &Core,
    listener: &ListenerConfig,
    info: &ConnectionInfo,
    connect: &mut Connect,
    writer: &mut W,
) -> Result<bool, Refused> {
    let version = connect.protocol;
    let certified = match crate::transport::apply_identity(listener, info, connect) {
        Ok(certified) => certified,
        Err(reason) => {
            refuse(writer, version, reason).await;
            return Err(Refused::ConnAck(reason));
        }
    };
    if let Err(reason) = check_connect(connect, &core.session_config) {
        refuse(writer, version, reason).await;
        return Err(Refused::ConnAck(reason));
    }
    if let Some(reason) = redirect_reason(core)
        && version.is_v5()
    {
        let reference = core.config.mqtt.redirect.server_reference.as_str();
        let connack = Packet::ConnAck(connack_refusal(connect, reason, None, Some(reference)));
        let mut buf = BytesMut::new();
        if Encoder::new(version).encode(&connack, &mut buf).is_ok() {
            let _ = writer.write_all(&buf).await;
            let _ = writer.flush().await;
        }
        return Err(Refused::ConnAck(reason));
    }
    if core.shutting_down() {
        refuse(writer, version, ReasonCode::SERVER_UNAVAILABLE).await;
        return Err(Refused::ConnAck(ReasonCode::SERVER_UNAVAILABLE));
    }
    Ok(certified)
}

/// The client id the session goes by, and the one the server assigned
/// (for an empty client id). An owned copy: the session, the slot and the
/// hooks' ClientInfo keep it for the session's life (one copy for all
/// three; `Session::accept` keeps CONNECT's), and a slice would pin the
/// whole CONNECT read buffer.
fn own_client_id(connect: &mut Connect) -> (ByteString, Option<ByteString>) {
    if connect.client_id.is_empty() {
        let assigned = ByteString::from(format!("roost-{}", uuid::Uuid::new_v4().simple()));
        return (assigned.clone(), Some(assigned));
    }
    let owned = ByteString::from(&*connect.client_id);
    connect.client_id = owned.clone();
    (owned, None)
}

/// Authentication without an AUTH exchange: a verified client certificate
/// is the credential (Mosquitto's use_identity_as_username, no password
/// check); otherwise the authenticator chain decides, and when nobody
/// vouches for the client, the listener's anonymous policy. Credentials
/// that no authenticator recognised are refused rather than silently
/// downgraded to anonymous; a chain of filters alone (a ban list) verifies
/// nothing, so a user name then counts as no `[auth.*]` at all would.
async fn authenticate<W: AsyncWrite + Unpin>(
    core: &Core,
    listener: &ListenerConfig,
    info: &ConnectionInfo,
    certified: bool,
    connect: &Connect,
    client: &ClientInfo,
    writer: &mut W,
) -> Result<Grant, Refused> {
    if certified {
        return Ok(Grant::default());
    }
    let request = ConnectRequest::new(
        client,
        connect.password.as_deref(),
        connect.clean_start,
        connect.keep_alive,
        &connect.properties.user_properties,
    );
    let reason = match core.ext.authenticate(&request).await {
        AuthResult::Accept(grant) => return Ok(grant),
        AuthResult::Refuse(reason) => {
            tracing::debug!(peer = %info.peer, client_id = %client.client_id, %reason, "authentication refused");
            reason
        }
        AuthResult::Ignore => {
            let anonymous_ok = listener.anonymous_allowed()
                && (connect.username.is_none() || !core.ext.verifies_credentials());
            if anonymous_ok {
                return Ok(Grant::default());
            }
            if connect.username.is_some() {
                ReasonCode::BAD_USER_NAME_OR_PASSWORD
            } else {
                ReasonCode::NOT_AUTHORIZED
            }
        }
    };
    refuse(writer, connect.protocol, reason).await;
    Err(Refused::ConnAck(reason))
}

/// The authenticated client is approved: by the `on_connect` hook, and its
/// will by the publish gate, with the identity just authenticated (a client
/// may not leave behind a message it could not publish itself;
/// docs/auth.md, "One gate").
async fn approve<W: AsyncWrite + Unpin>(
    core: &Arc<Core>,
    info: &ConnectionInfo,
    connect: &Connect,
    client: &Arc<ClientInfo>,
    grant: &Grant,
    writer: &mut W,
) -> Result<(), Refused> {
    if let Some(hooks) = &core.ext.hooks
        && let Decision::Deny {
            reason,
            reason_string,
        } = core.ext.decide(hooks.on_connect(client)).await
    {
        refuse_explained(writer, connect, reason, reason_string.as_deref()).await;
        return Err(Refused::ConnAck(reason));
    }
    if let Some(will) = &connect.will {
        let action = Action::Publish {
            qos: will.qos,
            retain: will.retain,
        };
        if !super::authz::gate(core, client, grant, None, action, &will.topic).await {
            tracing::info!(peer = %info.peer, client_id = %client.client_id, topic = %will.topic, "will topic not authorized; CONNECT refused");
            Metrics::inc(&core.metrics.wills_refused);
            refuse(writer, connect.protocol, ReasonCode::NOT_AUTHORIZED).await;
            return Err(Refused::ConnAck(ReasonCode::NOT_AUTHORIZED));
        }
    }
    Ok(())
}

/// A session claimed for a new connection.
struct Claimed {
    slot: Arc<SessionSlot>,
    /// The state to resume (None when starting clean).
    previous: Option<SessionState>,
    /// The session started clean (asked for, or forced).
    clean_start: bool,
    connection_id: u64,
    control: crate::link::ControlReceiver,
}

/// Claims the client id's session for this connection: a new connection id
/// and control line, then [`attach`] (takeover, resume or fresh). A session
/// owned by another user is refused (0x87).
async fn claim_session<W: AsyncWrite + Unpin>(
    core: &Arc<Core>,
    info: &ConnectionInfo,
    connect: &Connect,
    client: &Arc<ClientInfo>,
    grant: &Grant,
    writer: &mut W,
    now: Instant,
) -> Result<Claimed, Refused> {
    let connection_id = core
        .next_connection_id
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (control_tx, control_rx) = crate::link::channel();
    let reader = Arc::new(crate::read_acl::Reader::new(Arc::clone(client), grant));
    // Nothing this session does writes a row (no session record, no will,
    // no queued message): in cluster mode its claim may be held slim.
    let rows_free = connect.clean_start
        && connect.will.is_none()
        && (!connect.protocol.is_v5()
            || connect.properties.session_expiry_interval.unwrap_or(0) == 0);
    let claimant = Claimant {
        connection_id,
        control: &control_tx,
        client,
        reader: &reader,
        clean_start: connect.clean_start,
        slim: core.cluster().map(|c| &**c).filter(|_| rows_free),
    };
    let client_id = &client.client_id;
    // Cluster mode: one connection per client id in the cluster; Redis
    // unreachable refuses the CONNECT (0x88 / return code 3).
    if let Err(reason) =
        crate::cluster_node::claim(core, client_id, connection_id, connect.clean_start).await
    {
        refuse(writer, connect.protocol, reason).await;
        return Err(Refused::ConnAck(reason));
    }
    let attached = attach(core, client_id, connect.clean_start, claimant, now).await;
    let (slot, previous, clean_start) = match attached {
        Ok(attached) => attached,
        Err(reason) => {
            tracing::warn!(peer = %info.peer, %client_id, "client id belongs to another user's session; refused");
            Metrics::inc(&core.metrics.sessions_refused_owner);
            refuse(writer, connect.protocol, reason).await;
            return Err(Refused::ConnAck(reason));
        }
    };
    // A ban added while this client authenticated may have scanned the
    // registry before the link above was in it: check once more, now that
    // `BrokerHandle::ban` is sure to see either the link or this check.
    if let Some(bans) = &core.builtins.bans
        && bans.is_banned(client, std::time::SystemTime::now())
    {
        let _ = control_tx.try_send(Control::Close(crate::clients::BANNED_DISCONNECT));
    }
    Ok(Claimed {
        slot,
        previous,
        clean_start,
        connection_id,
        control: control_rx,
    })
}

/// Opens the session: accepted from CONNECT (resuming the claimed state,
/// which resends what is in flight and fills the window from the queue,
/// dropping what expired or no longer fits: the hooks hear of it), told to
/// the store, its drops counted, then the hooks told it was created or
/// resumed.
async fn open_session(
    core: &Arc<Core>,
    connect: Connect,
    assigned: Option<ByteString>,
    auth: Option<AuthSuccess>,
    client: &ClientInfo,
    claimed: &mut Claimed,
    now: Instant,
) -> Session {
    let previous = claimed.previous.take();
    let resumed = previous.is_some();
    // Drops the resumed state already counted; accept may add more (expired
    // while queued, too large for the new Maximum Packet Size).
    let mut drops_counted = previous.as_ref().map_or(0, SessionState::dropped_messages);
    let config = Arc::clone(&core.session_config);
    let mut session = Session::accept(connect, assigned, previous, config, auth, now);
    let slot = &claimed.slot;
    // The hooks hear (and the store gets, with the session's own batch)
    // what the resume dropped: expired while queued, too large now.
    let events = core.session_events(&mut session);
    crate::persist::on_connect(core.persist(), slot, &session, claimed.clean_start, events).await;
    core.sync_session_drops(slot, &mut drops_counted, &session);
    core.ext.notify(|h| {
        if resumed {
            h.on_session_resumed(client);
        } else {
            h.on_session_created(client);
        }
    });
    session
}

/// The hooks' view of a connecting client.
fn client_info(info: &ConnectionInfo, connect: &Connect, client_id: &ByteString) -> ClientInfo {
    let peer = match info.peer {
        crate::transport::PeerAddr::Inet(addr) => addr,
        // Unix-socket peers have no address; they appear as 0.0.0.0:0.
        crate::transport::PeerAddr::Unix => std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
    };
    let tls = info
        .identity()
        .map(|id| roost_hooks::TlsIdentity::new(id.common_name.clone(), id.subject_dn.clone()));
    ClientInfo::new(
        client_id.clone(),
        // Owned, like the client id: not a slice of the read buffer.
        connect.username.as_deref().map(ByteString::from),
        peer,
        connect.protocol,
        info.listener,
    )
    .with_tls(tls)
}

/// Runs an enhanced authentication exchange until success or failure.
#[allow(clippy::too_many_arguments)] // one exchange needs the whole connection context
async fn enhanced_auth<R, W>(
    core: &Arc<Core>,
    connect: &Connect,
    client: &ClientInfo,
    method: ByteString,
    decoder: &mut Decoder,
    reader: &mut R,
    writer: &mut W,
    rbuf: &mut BytesMut,
) -> Result<(AuthSuccess, Grant), Refused>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let version = connect.protocol;
    let exchange = core
        .ext
        .enhanced
        .as_ref()
        .and_then(|a| a.begin(&method, client));
    let Some(mut exchange) = exchange else {
        refuse(writer, version, ReasonCode::BAD_AUTHENTICATION_METHOD).await;
        return Err(Refused::ConnAck(ReasonCode::BAD_AUTHENTICATION_METHOD));
    };
    let mut data: Option<Bytes> = connect.properties.authentication_data.clone();
    let deadline = tokio::time::Instant::now() + core.config.connect_timeout();
    loop {
        match exchange.step(data.take()).await {
            AuthStep::Success { data, grant } => {
                return Ok((AuthSuccess { method, data }, grant));
            }
            AuthStep::Fail(reason) => {
                refuse(writer, version, reason).await;
                return Err(Refused::ConnAck(reason));
            }
            AuthStep::Continue(challenge) => {
                let auth = Packet::Auth(Auth {
                    reason_code: ReasonCode::CONTINUE_AUTHENTICATION,
                    properties: AuthProperties {
                        authentication_method: Some(method.clone()),
                        authentication_data: Some(challenge),
                        ..AuthProperties::default()
                    },
                });
                let mut buf = BytesMut::new();
                if Encoder::new(version).encode(&auth, &mut buf).is_err()
                    || writer.write_all(&buf).await.is_err()
                {
                    return Err(Refused::Silent("write failed during authentication"));
                }
                let reply = tokio::time::timeout_at(
                    deadline,
                    read_packet(&core.metrics, reader, decoder, rbuf),
                )
                .await;
                match reply {
                    Ok(Ok(Packet::Auth(reply))) => {
                        // The method must not change during the exchange [MQTT-4.12.0-5 / 3.15.2-1].
                        if reply.reason_code != ReasonCode::CONTINUE_AUTHENTICATION
                            || reply.properties.authentication_method.as_ref() != Some(&method)
                        {
                            refuse(writer, version, ReasonCode::PROTOCOL_ERROR).await;
                            return Err(Refused::ConnAck(ReasonCode::PROTOCOL_ERROR));
                        }
                        data = reply.properties.authentication_data;
                    }
                    Ok(Ok(_)) => {
                        refuse(writer, version, ReasonCode::PROTOCOL_ERROR).await;
                        return Err(Refused::ConnAck(ReasonCode::PROTOCOL_ERROR));
                    }
                    Ok(Err(Some(e))) => {
                        refuse(writer, version, ReasonCode::from(&e)).await;
                        return Err(Refused::ConnAck(ReasonCode::from(&e)));
                    }
                    Ok(Err(None)) => return Err(Refused::Silent("closed during authentication")),
                    Err(_) => return Err(Refused::Silent("authentication timed out")),
                }
            }
        }
    }
}

/// Attaches a new connection to the session of `client_id`: takes a live
/// connection over, resumes a parked session, or starts fresh. Returns the
/// slot, the state to resume (None when starting clean) and whether the
/// session started clean (asked for, or forced: an unowned stored session).
///
/// A session owned by another user name (live or parked) is not attached:
/// taking over someone else's client id would kick them off and hand their
/// subscriptions and queued messages to the newcomer. The error is the
/// CONNACK reason (0x87 Not authorized).
async fn attach(
    core: &Arc<Core>,
    client_id: &ByteString,
    clean_start: bool,
    claimant: Claimant<'_>,
    now: Instant,
) -> Result<(Arc<SessionSlot>, Option<SessionState>, bool), ReasonCode> {
    loop {
        let slot = core.sessions().get_or_create(client_id);
        let claimed = claim(&slot, &claimant);
        let mut forced_clean = false;
        let (previous, pending_will) = match claimed {
            Claim::Foreign => return Err(ReasonCode::NOT_AUTHORIZED),
            Claim::Ended => {
                // Lost a race with the session's end: drop the stale entry and retry.
                core.sessions().remove(&slot);
                continue;
            }
            Claim::TakeOver {
                old_control,
                handover,
            } => {
                tracing::info!(%client_id, "session taken over by a new connection");
                let _ = old_control.try_send(Control::Takeover);
                match tokio::time::timeout(HANDOVER_TIMEOUT, handover).await {
                    Ok(Ok(Handover { state, will })) => {
                        (Some(state), will.map(|(m, delay)| (m, delay == 0)))
                    }
                    _ => {
                        tracing::warn!(%client_id, "previous connection did not hand its session over in time");
                        slot.inner.lock().state_lost = true;
                        (None, None)
                    }
                }
            }
            // A reconnect before the will delay elapsed cancels the will [MQTT-3.1.3-9].
            Claim::Parked(Some(p)) => (Some(p.state), p.will.map(|(m, _)| (m, false))),
            Claim::Parked(None) | Claim::Unowned(None) => (None, None),
            Claim::Unowned(Some(p)) => {
                tracing::warn!(%client_id, "stored session has no recorded owner (format 1); starting clean");
                forced_clean = true;
                (Some(p.state), p.will.map(|(m, _)| (m, false)))
            }
        };
        let previous = if clean_start || forced_clean {
            // Clean Start ends the old session: its will goes out now, its
            // subscriptions go away [MQTT-3.1.2-4].
            if let Some((will, _)) = pending_will {
                core.publish_will(will, now);
            }
            if let Some(mut old) = previous {
                let state_lost = slot.inner.lock().state_lost;
                core.unsubscribe_session(&slot, &old, state_lost);
                core.discard_undelivered(&mut old);
            }
            let outbox = slot.inner.lock().outbox.take();
            core.report_ended(client_id, outbox.iter());
            None
        } else {
            if let Some((will, true)) = pending_will {
                core.publish_will(will, now);
            }
            previous
        };
        return Ok((slot, previous, clean_start || forced_clean));
    }
}

/// Who asks for a session: the new connection and its authorized user name.
struct Claimant<'a> {
    connection_id: u64,
    control: &'a crate::link::ControlSender,
    /// The connecting client; its user name (as authorized) owns the session.
    client: &'a Arc<ClientInfo>,
    /// The session's owner from now on: `client` and the part of its grant
    /// that restricts reading.
    reader: &'a Arc<crate::read_acl::Reader>,
    /// The CONNECT's Clean Start (shown by the management API).
    clean_start: bool,
    /// Cluster mode, a session with nothing to write: attaching to a fresh
    /// slot holds the claim slim (`ClusterLink::attached_slim`).
    slim: Option<&'a crate::cluster::ClusterLink>,
}

/// What claiming a slot found.
enum Claim {
    /// The slot's session already ended.
    Ended,
    /// The session belongs to another user name.
    Foreign,
    /// A live connection owns it; it must hand the session over.
    TakeOver {
        old_control: crate::link::ControlSender,
        handover: oneshot::Receiver<Handover>,
    },
    /// No live connection; the parked session, if any (boxed: it is large).
    Parked(Option<Box<crate::slot::Parked>>),
    /// A parked session whose owner is unknown: ended, not resumed.
    Unowned(Option<Box<crate::slot::Parked>>),
}

/// Installs `link` as the slot's connection under one lock.
fn claim(slot: &SessionSlot, claimant: &Claimant<'_>) -> Claim {
    let mut inner = slot.inner.lock();
    if inner.ended {
        return Claim::Ended;
    }
    let unowned = match inner.may_attach(claimant.client.username.as_deref()) {
        Some(false) => return Claim::Foreign,
        Some(true) => false,
        None => true,
    };
    inner.owner = Some(Arc::clone(claimant.reader));
    let link = Link {
        connection_id: claimant.connection_id,
        control: claimant.control.clone(),
        client: Arc::clone(claimant.client),
    };
    inner.generation += 1; // parked timers become stale
    inner.connected_at = crate::admin_subs::unix_now_s();
    inner.clean_start = claimant.clean_start;
    match inner.link.replace(link) {
        Some(old) => {
            let (tx, rx) = oneshot::channel();
            inner.handover = Some(tx);
            Claim::TakeOver {
                old_control: old.control,
                handover: rx,
            }
        }
        // A session without a known owner is resumed by nobody: the
        // claimant starts clean (docs/persistence.md, "Upgrading from format 1").
        None if unowned => Claim::Unowned(inner.parked.take()),
        None => {
            let parked = inner.parked.take();
            // A fresh slot (nothing parked, no row stored): under its lock,
            // so its connection's end sees the claim held slim.
            if let Some(cluster) = claimant.slim
                && parked.is_none()
                && !inner.store.session
                && !inner.store.will
            {
                cluster.attached_slim(&slot.client_id, claimant.connection_id);
            }
            Claim::Parked(parked)
        }
    }
}

/// Builds the will to publish for a connection that ends abnormally.
pub(crate) fn will_of(session: &Session, now: Instant) -> Option<(Message, u32)> {
    session.will().map(|w| {
        (
            Message::from_will(w.clone(), Some(session.client_id().clone()), now),
            session.will_delay(),
        )
    })
}
