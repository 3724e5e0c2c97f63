//! The embedder's extensions: authenticator chain, enhanced authentication,
//! authorizer chain and hooks. Fixed at build time; when a list is empty the
//! broker skips it, so an embedder who registers nothing pays nothing.
//!
//! A hook that panics is contained: the panic is logged and the configured
//! fallback decision applies (deny by default).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use roost_codec::{QoS, ReasonCode};
use roost_hooks::{
    AclResult, Action, AuthResult, Authenticator, Authorizer, BoxFuture, ClientInfo,
    ConnectRequest, Decision, DropCause, EnhancedAuthenticator, Hooks, MessageView,
    PublishDecision,
};
use roost_session::{DropReason, Message, SessionEvent};

/// What happens when a hook panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PanicPolicy {
    /// Treat the panic as a denial (reason 0x83 Implementation specific error).
    #[default]
    Deny,
    /// Treat the panic as an allow.
    Allow,
}

/// Everything an embedder plugged in.
#[derive(Default)]
pub(crate) struct Extensions {
    pub(crate) authenticators: Vec<Arc<dyn Authenticator>>,
    /// How many authenticators at the head of the chain are filters: they
    /// refuse or ignore, never vouch for a user name (the ban list). A chain
    /// of filters alone verifies no credentials (see [`Self::verifies_credentials`]).
    pub(crate) filters: usize,
    pub(crate) enhanced: Option<Arc<dyn EnhancedAuthenticator>>,
    pub(crate) authorizers: Vec<Arc<dyn Authorizer>>,
    pub(crate) hooks: Option<Arc<dyn Hooks>>,
    /// Hooks are registered and want `on_message_delivered/dropped`: the one
    /// flag the delivery paths check before building anything.
    pub(crate) message_events: bool,
    pub(crate) panic_policy: PanicPolicy,
    /// Bumped on every auth reload: per-session authorization caches
    /// stamped with an older value start over.
    pub(crate) authz_generation: AtomicU64,
    /// Asks the allocator to hand freed memory back to the OS; called a
    /// second after connections hibernated (see `driver::hibernate`).
    pub(crate) memory_release: Option<fn()>,
    /// Hands the calling thread's free memory back if `memory_release`
    /// asked since (for the broker's own threads outside the runtime, e.g.
    /// the cluster's claims thread).
    pub(crate) thread_memory_release: Option<fn() -> bool>,
    /// How long the hooks took to decide (`on_subscribe`, `on_publish`, ...).
    pub(crate) hook_latency: roost_store::LatencyHistogram,
    /// How long the authenticator chain took per CONNECT.
    pub(crate) auth_latency: roost_store::LatencyHistogram,
}

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extensions")
            .field(
                "authenticators",
                &self
                    .authenticators
                    .iter()
                    .map(|a| a.name().to_string())
                    .collect::<Vec<_>>(),
            )
            .field("enhanced", &self.enhanced.is_some())
            .field(
                "authorizers",
                &self
                    .authorizers
                    .iter()
                    .map(|a| a.name().to_string())
                    .collect::<Vec<_>>(),
            )
            .field("hooks", &self.hooks.is_some())
            .field("memory_release", &self.memory_release.is_some())
            .field(
                "thread_memory_release",
                &self.thread_memory_release.is_some(),
            )
            .finish()
    }
}

impl Extensions {
    /// Installs the hooks and reads whether they want message events.
    pub(crate) fn set_hooks(&mut self, hooks: Arc<dyn Hooks>) {
        self.message_events =
            std::panic::catch_unwind(AssertUnwindSafe(|| hooks.wants_message_events()))
                .unwrap_or(true);
        self.hooks = Some(hooks);
    }

    /// Reports a delivered message (see `Hooks::on_message_delivered` for
    /// the exact point per QoS). No-op unless message events are wanted.
    pub(crate) fn delivered(&self, client_id: &str, message: &Message, qos: QoS) {
        if self.message_events {
            let view = view_of(message, qos);
            self.notify(|h| h.on_message_delivered(client_id, &view));
        }
    }

    /// Reports a discarded message. No-op unless message events are wanted.
    pub(crate) fn dropped(&self, client_id: &str, message: &Message, qos: QoS, cause: DropCause) {
        if self.message_events {
            let view = view_of(message, qos);
            self.notify(|h| h.on_message_dropped(client_id, &view, cause));
        }
    }

    /// Tells the hooks what a session event says happened to a message:
    /// a QoS 0 PUBLISH queued for the transport, a PUBACK or PUBREC with a
    /// success code → delivered; an error code → dropped as rejected; a
    /// drop → dropped with its cause. Events without a message (recorded
    /// for the store only) say nothing to the hooks.
    pub(crate) fn hear(&self, client_id: &str, event: &SessionEvent) {
        match event {
            SessionEvent::Sent {
                message: Some(message),
                qos,
                ..
            } => self.delivered(client_id, message, *qos),
            SessionEvent::Acknowledged {
                message: Some(message),
                qos,
                reason,
                ..
            } => {
                if reason.is_error() {
                    self.dropped(client_id, message, *qos, DropCause::Rejected(*reason));
                } else {
                    self.delivered(client_id, message, *qos);
                }
            }
            SessionEvent::Dropped {
                message: Some(message),
                qos,
                reason,
                ..
            } => self.dropped(client_id, message, *qos, cause(*reason)),
            _ => {}
        }
    }

    /// Whether something checks credentials: an authenticator in the chain
    /// beyond the filters, or an enhanced authenticator (SCRAM). When nothing
    /// does, a user name is nobody's to verify, and a client that sends one
    /// is treated as with no `[auth.*]` at all (the listener's anonymous
    /// policy decides), instead of being refused for credentials no one
    /// could have accepted. When something does, a user name that skipped
    /// it (a plain CONNECT to a SCRAM-only broker) is refused rather than
    /// taken at its word: authorization rules name users.
    pub(crate) fn verifies_credentials(&self) -> bool {
        self.authenticators.len() > self.filters || self.enhanced.is_some()
    }

    /// Runs the authenticator chain: the first Accept or Refuse wins; `Ignore`
    /// from every authenticator (or an empty chain) yields `Ignore`.
    pub(crate) async fn authenticate(&self, request: &ConnectRequest<'_>) -> AuthResult {
        if self.authenticators.is_empty() {
            return AuthResult::Ignore;
        }
        let started = std::time::Instant::now();
        let result = self.authenticate_chain(request).await;
        self.auth_latency.observe(started.elapsed());
        result
    }

    async fn authenticate_chain(&self, request: &ConnectRequest<'_>) -> AuthResult {
        for authenticator in &self.authenticators {
            let outcome = guarded(authenticator.authenticate(request)).await;
            match outcome {
                Some(AuthResult::Ignore) => continue,
                Some(decided) => return decided,
                None => {
                    tracing::error!(
                        authenticator = authenticator.name(),
                        "authenticator panicked; refusing"
                    );
                    return AuthResult::Refuse(ReasonCode::UNSPECIFIED_ERROR);
                }
            }
        }
        AuthResult::Ignore
    }

    /// Runs the authorizer chain; the answer is `None` when every authorizer
    /// ignored the action. An authorizer with an async form is awaited (on
    /// the calling connection's task); the flag says whether the answer may
    /// be cached per session (only when no async authorizer was asked).
    pub(crate) async fn authorize(
        &self,
        client: &ClientInfo,
        action: Action,
        topic: &str,
    ) -> (Option<bool>, bool) {
        self.chain(client, action, topic, |a| {
            a.authorize(client, action, topic)
        })
        .await
    }

    /// The chain walk behind [`Extensions::authorize`] and
    /// [`Extensions::authorize_per_message`]: async forms are awaited,
    /// synchronous authorizers answer through `sync`.
    async fn chain(
        &self,
        client: &ClientInfo,
        action: Action,
        topic: &str,
        sync: impl Fn(&dyn Authorizer) -> AclResult,
    ) -> (Option<bool>, bool) {
        let mut cacheable = true;
        for authorizer in &self.authorizers {
            let pending = std::panic::catch_unwind(AssertUnwindSafe(|| {
                authorizer.authorize_async(client, action, topic)
            }));
            let result = match pending {
                Ok(Some(future)) => {
                    cacheable = false;
                    guarded(future).await.ok_or(())
                }
                Ok(None) => {
                    std::panic::catch_unwind(AssertUnwindSafe(|| sync(authorizer.as_ref())))
                        .map_err(|_| ())
                }
                Err(_) => Err(()),
            };
            match result {
                Ok(AclResult::Allow) => return (Some(true), cacheable),
                Ok(AclResult::Deny) => return (Some(false), cacheable),
                Ok(AclResult::Ignore) => {}
                Err(()) => {
                    tracing::error!(
                        authorizer = authorizer.name(),
                        "authorizer panicked; denying"
                    );
                    return (Some(false), false);
                }
            }
        }
        (None, cacheable)
    }

    /// At delivery (`acl_wildcards = "per_message"`): may `client` read a
    /// message on `topic`? Asks the synchronous authorizers only, as
    /// `Subscribe` on the topic name: the first Allow or Deny decides (a
    /// panic denies). When none decides, `Some(true)` if an authorizer with
    /// an async form was skipped (it decided on the filter at SUBSCRIBE),
    /// else `None` (the default policy decides).
    pub(crate) fn authorize_read(
        &self,
        client: &ClientInfo,
        qos: QoS,
        topic: &str,
    ) -> Option<bool> {
        let action = Action::Subscribe { qos };
        let mut skipped_async = false;
        for authorizer in &self.authorizers {
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                if authorizer.authorize_async(client, action, topic).is_some() {
                    // Dropped unpolled: nothing is sent.
                    return None;
                }
                Some(authorizer.authorize(client, action, topic))
            }));
            match result {
                Ok(None) => skipped_async = true,
                Ok(Some(AclResult::Allow)) => return Some(true),
                Ok(Some(AclResult::Deny)) => return Some(false),
                Ok(Some(AclResult::Ignore)) => {}
                Err(_) => {
                    tracing::error!(
                        authorizer = authorizer.name(),
                        "authorizer panicked; withholding the delivery"
                    );
                    return Some(false);
                }
            }
        }
        skipped_async.then_some(true)
    }

    /// Under `acl_wildcards = "per_message"`: the chain's answer for holding
    /// the wildcard `filter`, its messages being checked at delivery
    /// ([`Authorizer::authorize_per_message`]). Async authorizers are asked
    /// about the filter as usual. Same answer shape as [`Extensions::authorize`].
    pub(crate) async fn authorize_per_message(
        &self,
        client: &ClientInfo,
        qos: QoS,
        filter: &str,
    ) -> (Option<bool>, bool) {
        let action = Action::Subscribe { qos };
        self.chain(client, action, filter, |a| {
            a.authorize_per_message(client, qos, filter)
        })
        .await
    }

    /// The current authorization generation: cached answers from an older
    /// one are stale.
    pub(crate) fn authz_generation(&self) -> u64 {
        self.authz_generation.load(Ordering::Acquire)
    }

    /// Makes every session's cached authorization answers stale (the rules
    /// were reloaded or changed).
    pub(crate) fn invalidate_authz(&self) {
        self.authz_generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Awaits a decision hook, applying the panic policy.
    pub(crate) async fn decide(&self, hook: BoxFuture<'_, Decision>) -> Decision {
        match self.timed(hook).await {
            Some(decision) => decision,
            None => self.on_panic(),
        }
    }

    /// Awaits `on_publish`, applying the panic policy.
    pub(crate) async fn decide_publish(
        &self,
        hook: BoxFuture<'_, PublishDecision>,
    ) -> PublishDecision {
        match self.timed(hook).await {
            Some(decision) => decision,
            None => match self.on_panic() {
                Decision::Allow => PublishDecision::Allow,
                Decision::Deny {
                    reason,
                    reason_string,
                } => PublishDecision::Deny {
                    reason,
                    reason_string,
                },
            },
        }
    }

    /// A hook's answer (`None`: it panicked), its time recorded.
    async fn timed<T>(&self, hook: BoxFuture<'_, T>) -> Option<T> {
        let started = std::time::Instant::now();
        let answer = guarded(hook).await;
        self.hook_latency.observe(started.elapsed());
        answer
    }

    fn on_panic(&self) -> Decision {
        tracing::error!(policy = ?self.panic_policy, "hook panicked");
        match self.panic_policy {
            PanicPolicy::Allow => Decision::Allow,
            PanicPolicy::Deny => Decision::deny(ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR),
        }
    }

    /// Calls a notification hook, containing a panic.
    pub(crate) fn notify(&self, call: impl FnOnce(&dyn Hooks)) {
        if let Some(hooks) = &self.hooks
            && std::panic::catch_unwind(AssertUnwindSafe(|| call(hooks.as_ref()))).is_err()
        {
            tracing::error!("notification hook panicked");
        }
    }
}

/// What hooks see of a message delivered (or meant to be) at `qos`.
fn view_of(message: &Message, qos: QoS) -> MessageView {
    MessageView::new(
        message.topic.clone(),
        message.payload.clone(),
        qos,
        message.retain,
        message.properties.user_properties.clone(),
    )
}

/// Polls a boxed future, turning a panic into `None`.
fn guarded<T>(future: BoxFuture<'_, T>) -> Guarded<'_, T> {
    Guarded { future }
}

struct Guarded<'a, T> {
    future: BoxFuture<'a, T>,
}

impl<T> Future for Guarded<'_, T> {
    type Output = Option<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let future = &mut self.future;
        match std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Ready(value)) => Poll::Ready(Some(value)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(None),
        }
    }
}

/// The hooks' cause for a session's drop reason.
fn cause(reason: DropReason) -> DropCause {
    match reason {
        DropReason::Expired => DropCause::Expired,
        DropReason::TooLarge => DropCause::TooLarge,
        DropReason::QueueFull => DropCause::QueueFull,
        DropReason::Qos0WhileOffline => DropCause::Offline,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roost_hooks::ready;

    struct Panicky;

    impl Authenticator for Panicky {
        fn name(&self) -> &str {
            "panicky"
        }
        fn authenticate<'a>(
            &'a self,
            _request: &'a ConnectRequest<'a>,
        ) -> BoxFuture<'a, AuthResult> {
            Box::pin(async { panic!("boom") })
        }
    }

    fn client() -> ClientInfo {
        ClientInfo::new(
            "c".into(),
            None,
            ([127, 0, 0, 1], 1).into(),
            roost_codec::ProtocolVersion::V5,
            roost_hooks::ListenerKind::Tcp,
        )
    }

    #[tokio::test]
    async fn a_panicking_authenticator_refuses_instead_of_crashing() {
        let ext = Extensions {
            authenticators: vec![Arc::new(Panicky)],
            ..Extensions::default()
        };
        let client = client();
        let request = ConnectRequest::new(&client, None, true, 60, &[]);
        assert_eq!(
            ext.authenticate(&request).await,
            AuthResult::Refuse(ReasonCode::UNSPECIFIED_ERROR)
        );
    }

    #[tokio::test]
    async fn a_panicking_hook_follows_the_panic_policy() {
        let deny = Extensions::default();
        let boom: BoxFuture<'_, Decision> = Box::pin(async { panic!("boom") });
        assert_eq!(
            deny.decide(boom).await,
            Decision::deny(ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR)
        );
        let allow = Extensions {
            panic_policy: PanicPolicy::Allow,
            ..Extensions::default()
        };
        let boom: BoxFuture<'_, Decision> = Box::pin(async { panic!("boom") });
        assert_eq!(allow.decide(boom).await, Decision::Allow);
        assert_eq!(allow.decide(ready(Decision::Allow)).await, Decision::Allow);
    }

    #[tokio::test]
    async fn an_empty_chain_ignores() {
        let ext = Extensions::default();
        let client = client();
        let request = ConnectRequest::new(&client, None, true, 60, &[]);
        assert_eq!(ext.authenticate(&request).await, AuthResult::Ignore);
        assert_eq!(
            ext.authorize(
                &client,
                Action::Subscribe {
                    qos: roost_codec::QoS::AtMostOnce
                },
                "a"
            )
            .await,
            (None, true)
        );
    }
}
