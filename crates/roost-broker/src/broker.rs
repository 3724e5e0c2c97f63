//! The embedding API: build a [`Broker`] from a [`Config`], run it, and
//! control it through a [`BrokerHandle`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use bytestring::ByteString;
use roost_codec::{PublishProperties, QoS, ReasonCode};
use roost_session::Message;

use roost_hooks::{Authenticator, Authorizer, EnhancedAuthenticator, Hooks};

use crate::config::Config;
use crate::core::Core;
use crate::error::BrokerError;
use crate::extensions::{Extensions, PanicPolicy};
use crate::link::Control;
use crate::listener::{BoundAddress, BoundListener};
use crate::metrics::Stats;
use crate::retained::{RetainedError, RetainedMessage, RetainedPage};
use crate::transport::{Reloadable, TlsReloadError};

/// Builds a broker.
#[derive(Default)]
pub struct BrokerBuilder {
    config: Config,
    ext: Extensions,
}

impl std::fmt::Debug for BrokerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl BrokerBuilder {
    /// Uses this configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Appends an authenticator to the chain (asked in order; the first that
    /// accepts or refuses decides).
    pub fn authenticator(mut self, authenticator: Arc<dyn Authenticator>) -> Self {
        self.ext.authenticators.push(authenticator);
        self
    }

    /// Installs the MQTT 5.0 enhanced-authentication mechanism(s) (AUTH exchanges).
    pub fn enhanced_authenticator(mut self, auth: Arc<dyn EnhancedAuthenticator>) -> Self {
        self.ext.enhanced = Some(auth);
        self
    }

    /// Appends an authorizer to the chain (asked in order; the first that
    /// allows or denies decides; otherwise the default ACL policy applies).
    pub fn authorizer(mut self, authorizer: Arc<dyn Authorizer>) -> Self {
        self.ext.authorizers.push(authorizer);
        self
    }

    /// Installs per-packet hooks.
    pub fn hooks(mut self, hooks: Arc<dyn Hooks>) -> Self {
        self.ext.set_hooks(hooks);
        self
    }

    /// Where persistent state is kept (`[store]`; default memory: nothing
    /// outlives the process). With disk or Redis, sessions, subscriptions,
    /// queued messages, retained messages and wills survive a restart.
    pub fn store(mut self, store: crate::config::StoreConfig) -> Self {
        self.config.store = store;
        self
    }

    /// What a panicking hook means (deny by default).
    pub fn hook_panic_policy(mut self, policy: PanicPolicy) -> Self {
        self.ext.panic_policy = policy;
        self
    }

    /// How to hand memory the broker freed back to the OS. The broker calls
    /// it about a second after idle connections hibernated (their tasks'
    /// memory is free then, and nothing else may run that would make the
    /// allocator purge it). The `roost` server passes
    /// `roost_alloc::ask_release`; with glibc malloc, `malloc_trim(0)` is the
    /// equivalent. Without one, freed memory stays with the allocator.
    pub fn memory_release(mut self, release: fn()) -> Self {
        self.ext.memory_release = Some(release);
        self
    }

    /// How a thread of the broker's own (outside the runtime, such as the
    /// cluster's claims thread) hands its free memory back to the OS once
    /// [`Self::memory_release`] asked: it calls this when it waits for
    /// work. The `roost` server passes `roost_alloc::release_if_asked`
    /// (mimalloc frees a thread's pages on that thread only: a thread that
    /// allocated for every CONNECT and then idles keeps them otherwise).
    pub fn thread_memory_release(mut self, release: fn() -> bool) -> Self {
        self.ext.thread_memory_release = Some(release);
        self
    }

    /// Binds every listener. Nothing is accepted until [`Broker::run`].
    pub async fn bind(mut self) -> Result<Broker, BrokerError> {
        let (builtins, tasks) = crate::builtin_auth::install(&self.config.auth, &mut self.ext)
            .map_err(BrokerError::Auth)?;
        // Bans added at run time before the last stop (`bans_file.rs`).
        if let (Some(bans), Some(path)) = (&builtins.bans, crate::bans_file::path(&self.config)) {
            match crate::bans_file::load(&path, bans) {
                Ok(0) => {}
                Ok(n) => tracing::info!(bans = n, path = %path.display(), "bans restored"),
                Err(e) => tracing::warn!("bans not restored: {e}"),
            }
        }
        let background: Vec<tokio::task::JoinHandle<()>> =
            tasks.into_iter().map(tokio::spawn).collect();
        // Listeners first: a taken port or a bad certificate must fail the
        // start before the store creates its data directory. Nothing is
        // accepted on them until `run`.
        let mut listeners = Vec::new();
        for listener in self.config.effective_listeners() {
            listeners.push(BoundListener::bind(listener, &self.config).await?);
        }
        let opened = if self.config.cluster.enabled {
            crate::persist::open_shared(&self.config).await
        } else {
            crate::persist::open(&self.config.store).await
        }
        .map_err(BrokerError::Store)?;
        let (persist, snapshot) = opened.unzip();
        let core = Core::new(self.config, self.ext, builtins, persist);
        let addresses = listeners.iter().map(|l| l.address.url.clone()).collect();
        crate::cluster_node::join(&core, addresses)
            .await
            .map_err(BrokerError::Cluster)?;
        let restored = match (core.persist(), snapshot) {
            (Some(persist), Some(snapshot)) => {
                let restored = crate::restore::restore(&core, snapshot);
                // After the restore, which must not write back what it loads.
                if let Some(sink) = core.retained_sink() {
                    core.retained.on_change(sink);
                }
                persist
                    .start()
                    .map_err(|e| BrokerError::Store(format!("store: {e}")))?;
                Some(restored)
            }
            _ => None,
        };
        let tls: Arc<[Arc<dyn Reloadable>]> = listeners
            .iter()
            .filter_map(BoundListener::reloader)
            .collect();
        Ok(Broker {
            core,
            listeners,
            started_at: SystemTime::now(),
            tls,
            background,
            restored,
        })
    }
}

/// A bound broker.
#[derive(Debug)]
pub struct Broker {
    core: Arc<Core>,
    listeners: Vec<BoundListener>,
    /// When `bind` finished: the broker's start as `/api/v1/status` shows it.
    started_at: SystemTime,
    tls: Arc<[Arc<dyn Reloadable>]>,
    /// Built-ins' background work (JWKS refresh), stopped with the broker.
    background: Vec<tokio::task::JoinHandle<()>>,
    /// Timers, wills and delayed messages of the restored state, started by `run`.
    restored: Option<crate::restore::Restored>,
}

impl Broker {
    /// Starts building a broker.
    pub fn builder() -> BrokerBuilder {
        BrokerBuilder::default()
    }

    /// The IP addresses the network listeners are bound to, in config order
    /// (useful with port 0); Unix socket listeners are left out.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.address.addr.inet())
            .collect()
    }

    /// Every listener's kind, bound address and URL, in config order.
    pub fn listeners(&self) -> Vec<BoundAddress> {
        self.listeners.iter().map(|l| l.address.clone()).collect()
    }

    /// A handle to control the running broker.
    pub fn handle(&self) -> BrokerHandle {
        BrokerHandle {
            core: Arc::clone(&self.core),
            tls: Arc::clone(&self.tls),
            listeners: self.listeners().into(),
            started_at: self.started_at,
        }
    }

    /// Serves until [`BrokerHandle::shutdown`] is called, then waits (bounded)
    /// for connections to close.
    pub async fn run(self) {
        let mut tasks = Vec::new();
        if let Some(restored) = self.restored {
            restored.start(&self.core);
        }
        crate::listener::announce_all(&self.listeners);
        for listener in self.listeners {
            tasks.push(tokio::spawn(listener.run(Arc::clone(&self.core))));
        }
        crate::driver::start_dormitory(&self.core);
        // Ends by itself at shutdown.
        let core = Arc::clone(&self.core);
        tokio::spawn(async move { core.retained.sweep_until(core.shutdown.subscribe()).await });
        // The `$SYS` tree; ends by itself at shutdown (at once when off).
        tokio::spawn(crate::sys::run(Arc::clone(&self.core)));
        let mut shutdown = self.core.shutdown.subscribe();
        while !*shutdown.borrow_and_update() {
            if shutdown.changed().await.is_err() {
                break;
            }
        }
        for task in tasks {
            let _ = task.await;
        }
        // Connections see the same signal and close with 0x8B; give them a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.core.metrics.snapshot().connections_current > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for task in &self.background {
            task.abort();
        }
        crate::cluster_node::leave(&self.core).await;
        if self.core.persist().is_some() {
            let core = Arc::clone(&self.core);
            let _ = tokio::task::spawn_blocking(move || core.close_store()).await;
        }
        tracing::info!("broker stopped");
    }

    /// Serves until `stop` completes (for example `tokio::signal::ctrl_c()`),
    /// then shuts down as [`BrokerHandle::shutdown`] does and waits for it.
    pub async fn run_until(self, stop: impl Future) {
        let handle = self.handle();
        let run = self.run();
        tokio::pin!(run);
        tokio::select! {
            () = &mut run => return,
            _ = stop => handle.shutdown(),
        }
        run.await;
    }
}

/// Controls a running broker; cheap to clone.
#[derive(Debug, Clone)]
pub struct BrokerHandle {
    pub(crate) core: Arc<Core>,
    tls: Arc<[Arc<dyn Reloadable>]>,
    listeners: Arc<[BoundAddress]>,
    started_at: SystemTime,
}

impl BrokerHandle {
    /// Begins a graceful shutdown: listeners stop, clients get DISCONNECT 0x8B.
    pub fn shutdown(&self) {
        self.core.begin_shutdown();
    }

    /// Completes once a shutdown has begun (for services run beside the
    /// broker, such as the management API, to stop with it).
    pub async fn shutdown_begun(&self) {
        let mut shutdown = self.core.shutdown.subscribe();
        while !*shutdown.borrow_and_update() {
            if shutdown.changed().await.is_err() {
                return;
            }
        }
    }

    /// The configuration the broker runs with.
    pub fn config(&self) -> &Config {
        &self.core.config
    }

    /// When the broker was bound (its start).
    pub fn started_at(&self) -> SystemTime {
        self.started_at
    }

    /// This node's name: the cluster node id (configured, or derived from
    /// the host name and data directory).
    pub fn node_name(&self) -> String {
        self.core.node_id().to_string()
    }

    /// Every listener's kind, bound address and URL, in config order.
    pub fn listeners(&self) -> &[BoundAddress] {
        &self.listeners
    }

    /// Publishes a message from the application. Returns how many sessions it reached.
    ///
    /// The application is the server: its messages are not checked against
    /// client authorization (docs/auth.md, "One gate"). A topic that is not a
    /// valid topic name (empty, wildcards, NUL) reaches nobody and is logged.
    pub fn publish(&self, topic: &str, payload: Bytes, qos: QoS, retain: bool) -> usize {
        if let Err(e) = roost_codec::topic::validate_topic_name(topic) {
            tracing::warn!(topic, error = %e, "BrokerHandle::publish: not a valid topic name; dropped");
            return 0;
        }
        let message = Message {
            topic: ByteString::from(topic),
            payload,
            qos,
            retain,
            properties: PublishProperties::default(),
            expires_at: None,
            publisher: None,
        };
        self.core.publish(message, None, Instant::now())
    }

    /// Closes the connection of `client_id` with DISCONNECT 0x98 Administrative
    /// action (5.0). Returns false when no such client is connected.
    pub fn disconnect_client(&self, client_id: &str) -> bool {
        let Some(slot) = self.core.sessions().get(client_id) else {
            return false;
        };
        let control = slot.inner.lock().link.as_ref().map(|l| l.control.clone());
        control.is_some_and(|c| {
            c.try_send(Control::Close(ReasonCode::ADMINISTRATIVE_ACTION))
                .is_ok()
        })
    }

    /// Every session (connected or parked), sorted by client id.
    pub fn clients(&self) -> Vec<crate::clients::ClientSummary> {
        crate::clients::list(&self.core)
    }

    /// Sessions `query` selects with their counts, sorted by client id:
    /// items `offset..offset+limit` and how many match in all. One router
    /// walk and one pass over the registry (for the management API).
    pub fn clients_page(
        &self,
        query: &crate::admin::ClientQuery,
        offset: usize,
        limit: usize,
    ) -> crate::admin::Page<crate::admin::ClientDetail> {
        crate::admin::clients(&self.core, query, offset, limit)
    }

    /// One session with its counts; `None` when unknown.
    pub fn client(&self, client_id: &str) -> Option<crate::admin::ClientDetail> {
        crate::admin::client(&self.core, client_id)
    }

    /// The cluster's live nodes, sorted by node id (`None`: not in cluster
    /// mode). Read from Redis on a blocking thread.
    pub async fn cluster_members(&self) -> Option<Result<Vec<roost_cluster::Member>, String>> {
        let link = Arc::clone(self.core.cluster()?);
        let read = tokio::task::spawn_blocking(move || {
            link.cluster().members().map_err(|e| e.to_string())
        });
        Some(read.await.unwrap_or_else(|e| Err(e.to_string())))
    }

    /// Cluster mode: sets a field this node announces to the others in its
    /// node hash (`admin`: the URL of its management API), written now and
    /// at every lease renewal. Nothing outside cluster mode.
    pub async fn cluster_announce(&self, field: &str, value: &str) -> Result<(), String> {
        let Some(link) = self.core.cluster() else {
            return Ok(());
        };
        let link = Arc::clone(link);
        let (field, value) = (field.to_string(), value.to_string());
        let write = tokio::task::spawn_blocking(move || {
            link.cluster()
                .announce(&field, &value)
                .map_err(|e| e.to_string())
        });
        write.await.unwrap_or_else(|e| Err(e.to_string()))
    }

    /// Cluster mode: the credential the nodes' management APIs accept from
    /// each other (kept in Redis; `proposed` becomes it when there is none
    /// yet). `Ok(None)` outside cluster mode.
    pub async fn cluster_admin_secret(&self, proposed: &str) -> Result<Option<String>, String> {
        let Some(link) = self.core.cluster() else {
            return Ok(None);
        };
        let link = Arc::clone(link);
        let proposed = proposed.to_string();
        let read = tokio::task::spawn_blocking(move || {
            link.cluster()
                .admin_secret(&proposed)
                .map(Some)
                .map_err(|e| e.to_string())
        });
        read.await.unwrap_or_else(|e| Err(e.to_string()))
    }

    /// Whether the broker runs in cluster mode.
    pub fn is_clustered(&self) -> bool {
        self.core.cluster().is_some()
    }

    /// Cluster mode: the node that holds `client_id`'s claim (its owner
    /// record in Redis), `None` when no node does or outside cluster mode.
    /// Read from Redis on a blocking thread.
    pub async fn cluster_owner(&self, client_id: &str) -> Result<Option<String>, String> {
        let Some(link) = self.core.cluster() else {
            return Ok(None);
        };
        let link = Arc::clone(link);
        let client_id = client_id.to_string();
        let read = tokio::task::spawn_blocking(move || {
            link.cluster()
                .owner_node(&client_id)
                .map_err(|e| e.to_string())
        });
        read.await.unwrap_or_else(|e| Err(e.to_string()))
    }

    /// Every listener's connections and refusals, in the order they started.
    pub fn listener_stats(&self) -> Vec<crate::listener_stats::ListenerStats> {
        self.core.listener_stats.read()
    }

    /// The latency histograms: store writes, hooks, authentication.
    pub fn latencies(&self) -> crate::metrics::Latencies {
        crate::metrics::Latencies {
            store_write: self
                .core
                .persist()
                .and_then(|p| p.write_latency())
                .unwrap_or_default(),
            hooks: self.core.ext.hook_latency.snapshot(),
            authentication: self.core.ext.auth_latency.snapshot(),
        }
    }

    /// [`Self::client`] with what only a live connection's task knows (its
    /// keep-alive, expiry interval, inflight window and queue), asked of the
    /// task and waited for (up to 10 s; without them if it does not answer).
    pub async fn client_live(&self, client_id: &str) -> Option<crate::admin::ClientDetail> {
        let mut detail = self.client(client_id)?;
        if detail.connected
            && let Some(live) = crate::admin_subs::live_detail(&self.core, client_id).await
        {
            detail.keep_alive_s = Some(live.keep_alive);
            detail.session_expiry_interval_s = Some(live.session_expiry_interval);
            detail.inflight = Some(live.inflight);
            detail.queued += live.queued;
        }
        Some(detail)
    }

    /// Subscribes a client to `filter` as if it had sent SUBSCRIBE (no SUBACK
    /// goes to it): validation and quota, the router, its session, the store,
    /// retained messages per Retain Handling. A live session's connection
    /// task does it (and answers); a parked one is changed in place.
    pub async fn subscribe_client(
        &self,
        client_id: &str,
        filter: &str,
        options: roost_codec::SubscriptionOptions,
    ) -> Result<crate::admin_subs::Subscribed, crate::admin_subs::SubscribeError> {
        crate::admin_subs::subscribe(&self.core, client_id, filter, options).await
    }

    /// Unsubscribes a client from `filter` as if it had sent UNSUBSCRIBE (no
    /// UNSUBACK goes to it); `Ok(false)` when it did not hold the filter.
    pub async fn unsubscribe_client(
        &self,
        client_id: &str,
        filter: &str,
    ) -> Result<bool, crate::admin_subs::SubscribeError> {
        crate::admin_subs::unsubscribe(&self.core, client_id, filter).await
    }

    /// The subscriptions of one session (a router walk); `None` when unknown.
    pub fn client_subscriptions(
        &self,
        client_id: &str,
    ) -> Option<Vec<crate::admin::SubscriptionInfo>> {
        crate::admin::client_subscriptions(&self.core, client_id)
    }

    /// Every subscription (of one client, or with one exact filter), in trie
    /// order: items `offset..offset+limit` and the total.
    pub fn subscriptions_page(
        &self,
        client_id: Option<&str>,
        filter: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> crate::admin::Page<crate::admin::SubscriptionInfo> {
        crate::admin::subscriptions(&self.core, client_id, filter, offset, limit)
    }

    /// Every routed filter with its subscriber count, sorted by filter.
    pub fn routes_page(
        &self,
        offset: usize,
        limit: usize,
    ) -> crate::admin::Page<crate::admin::RouteInfo> {
        crate::admin::routes(&self.core, offset, limit)
    }

    /// The users of the password file (`[auth.password_file]`).
    pub fn password_users(&self) -> Result<Vec<String>, crate::admin::UsersError> {
        crate::admin::users(&self.core)
    }

    /// Adds a user to the password file (`create`) or changes its password,
    /// then reloads the auth files so the change applies to the next CONNECT.
    pub fn password_user_set(
        &self,
        user: &str,
        password: &str,
        create: bool,
    ) -> Result<(), crate::admin::UsersError> {
        crate::admin::set_user(&self.core, user, password, create)?;
        let _ = self.reload_auth();
        Ok(())
    }

    /// Removes a user from the password file, then reloads the auth files.
    pub fn password_user_remove(&self, user: &str) -> Result<(), crate::admin::UsersError> {
        crate::admin::remove_user(&self.core, user)?;
        let _ = self.reload_auth();
        Ok(())
    }

    /// Re-reads the built-in authentication and ACL files (SIGHUP). A file
    /// that fails to parse keeps its previous contents; the errors (naming the
    /// file and line) are returned for logging.
    pub fn reload_auth(&self) -> Vec<String> {
        // Sessions forget their cached authorization answers whatever
        // happens: a file that reloaded has new rules.
        self.core.ext.invalidate_authz();
        let mut errors = Vec::new();
        for (name, reload) in &self.core.builtins.reloads {
            match reload() {
                Ok(()) => tracing::info!(builtin = name, "reloaded"),
                Err(e) => {
                    tracing::error!(builtin = name, error = %e, "reload failed; keeping the previous rules");
                    errors.push(e);
                }
            }
        }
        errors
    }

    /// The ban list, when `[auth.banned]` is configured: list and remove bans
    /// at run time. Add them with [`BrokerHandle::ban`], which also closes the
    /// connections a new ban covers (`BanList::add` alone only refuses later
    /// CONNECTs).
    pub fn bans(&self) -> Option<Arc<roost_auth::BanList>> {
        self.core.builtins.bans.clone()
    }

    /// Adds a ban (by client id, user name or network) and closes every live
    /// connection the ban list now covers: DISCONNECT 0x98 Administrative
    /// action for 5.0 (0x8A Banned is not a DISCONNECT code), a plain close
    /// for 3.x, and the will published as for any server-initiated close.
    /// Their next CONNECT gets 0x8A Banned (3.1.1: return code 5). Returns
    /// how many connections were closed, or `None` (nothing added) when no
    /// ban list is configured (`[auth.banned]`).
    ///
    /// In cluster mode the ban is also added to the cluster's list, and
    /// every node applies it the same way (docs/cluster.md). A single node
    /// with a persistent store keeps it across restarts (`bans_file.rs`).
    pub fn ban(&self, ban: roost_auth::Ban) -> Option<usize> {
        let bans = self.core.builtins.bans.as_ref()?;
        tracing::info!(target = %ban.target, "ban added");
        if let Some(cluster) = self.core.cluster() {
            cluster.ban(&ban.target.to_string(), Some(ban.expires_at));
        }
        bans.add(ban);
        self.save_bans(bans);
        Some(crate::clients::close_banned(
            &self.core,
            bans,
            std::time::SystemTime::now(),
        ))
    }

    /// Lifts a ban; in cluster mode on every node. Returns whether this
    /// node had it, or `None` when no ban list is configured.
    pub fn unban(&self, target: &roost_auth::BanTarget) -> Option<bool> {
        let bans = self.core.builtins.bans.as_ref()?;
        tracing::info!(%target, "ban lifted");
        if let Some(cluster) = self.core.cluster() {
            cluster.ban(&target.to_string(), None);
        }
        let had = bans.remove(target);
        self.save_bans(bans);
        Some(had)
    }

    /// Writes the ban list for the next start (`bans_file.rs`), when this
    /// broker keeps one; a failure is logged (the ban holds until restart).
    fn save_bans(&self, bans: &roost_auth::BanList) {
        if let Some(path) = crate::bans_file::path(&self.core.config)
            && let Err(e) = crate::bans_file::save(&path, bans)
        {
            tracing::warn!("ban list not saved (it holds until a restart): {e}");
        }
    }

    /// Reloads the certificate files of every TLS, WSS and QUIC listener (the
    /// binary calls it on SIGHUP). New handshakes use the new certificates;
    /// established connections are not touched. A listener whose files do not
    /// load keeps its previous certificates. Returns how many reloaded.
    pub fn reload_tls(&self) -> Result<usize, TlsReloadError> {
        let mut failures = Vec::new();
        for listener in self.tls.iter() {
            if let Err(e) = listener.reload() {
                tracing::warn!(listener = listener.name(), error = %e, "TLS reload failed; keeping the previous certificates");
                failures.push(e);
            }
        }
        let reloaded = self.tls.len() - failures.len();
        if failures.is_empty() {
            Ok(reloaded)
        } else {
            Err(TlsReloadError { failures, reloaded })
        }
    }

    /// Current counters.
    pub fn stats(&self) -> Stats {
        self.core.stats()
    }

    /// One page of the retained messages matching `filter`, in topic order.
    /// Wildcards work as in a subscription (`#` and `+` at the first level
    /// skip `$` topics). `after` is the previous page's
    /// [`RetainedPage::next`] (`None` = from the start); `limit` is clamped
    /// to 1..=1000. A topic stored during the whole listing shows exactly
    /// once, whatever is inserted or deleted meanwhile. Expired messages are
    /// not listed (and are removed).
    pub fn retained_list(
        &self,
        filter: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<RetainedPage, RetainedError> {
        self.core
            .retained
            .list(filter, after, limit, Instant::now())
    }

    /// The retained message of `topic`; `None` when there is none or it expired.
    pub fn retained_get(&self, topic: &str) -> Option<RetainedMessage> {
        self.core.retained.get(topic, Instant::now())
    }

    /// Stores `payload` as the retained message of `topic`, replacing any,
    /// without delivering it to anyone now: later subscribers get it, as with
    /// the seed's `addRetainMessage`. To deliver it to current subscribers as
    /// well, use [`BrokerHandle::publish`] with `retain = true`. The limits,
    /// `retain_ttl` and the properties' Message Expiry Interval apply; an
    /// empty payload deletes, as a retained PUBLISH would. In cluster mode
    /// the change goes to the cluster's retained store (every node's copy),
    /// as a retained PUBLISH's does.
    pub fn retained_set(
        &self,
        topic: &str,
        payload: Bytes,
        qos: QoS,
        properties: PublishProperties,
    ) -> Result<(), RetainedError> {
        let stored =
            self.core
                .retained
                .set_from_api(topic, payload, qos, properties, Instant::now())?;
        if let Some(link) = self.core.cluster() {
            match stored {
                Some(message) => link.retain(&message),
                None => link.retain(&cleared(topic)),
            }
        }
        Ok(())
    }

    /// Deletes the retained message of `topic`; false when there was none
    /// (on this node). In cluster mode it is deleted cluster-wide.
    pub fn retained_delete(&self, topic: &str) -> bool {
        let removed = self.core.retained.delete(topic);
        if let Some(link) = self.core.cluster() {
            link.retain(&cleared(topic));
        }
        removed
    }

    /// Retained messages stored (expired ones count until they are purged).
    pub fn retained_count(&self) -> usize {
        self.core.retained.len()
    }
}

/// An empty retained message of `topic`: clears it in the cluster.
fn cleared(topic: &str) -> Message {
    Message {
        topic: ByteString::from(topic),
        payload: Bytes::new(),
        qos: QoS::AtMostOnce,
        retain: true,
        properties: PublishProperties::default(),
        expires_at: None,
        publisher: None,
    }
}
