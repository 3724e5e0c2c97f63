//! The broker's shared state and the operations every connection uses:
//! routing a message, the retained store, and the session lifecycle (attach,
//! park, expire, will).

mod events;
mod handover;
mod lifecycle;
mod listing;
mod read_checks;
mod route;

pub(crate) use route::Publishers;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use parking_lot::RwLock;
use roost_codec::ReasonCode;
use roost_codec::topic::parse_shared;
use roost_router::{Router, Subscription};
use roost_session::SessionConfig;
use tokio::sync::watch;

use crate::config::Config;
use crate::extensions::Extensions;
use crate::hibernate::Dormitory;
use crate::link::Control;
use crate::metrics::Metrics;
use crate::retained::RetainedStore;
use crate::slot::{SessionKey, SessionSlot};

/// Everything connections share.
pub(crate) struct Core {
    pub(crate) config: Config,
    pub(crate) session_config: Arc<SessionConfig>,
    sessions: crate::registry::Registry,
    /// Taken only here and in `route.rs` / `lifecycle.rs`.
    router: RwLock<Router<SessionKey>>,
    pub(crate) retained: RetainedStore,
    /// The broker's own `$SYS/broker/...` values (`crate::sys`), retained
    /// apart from clients' messages.
    pub(crate) sys_values: crate::retained::SystemValues,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) ext: Extensions,
    pub(crate) builtins: crate::builtin_auth::Builtins,
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) next_connection_id: AtomicU64,
    /// Management API requests waiting for connections' drivers.
    pub(crate) admin_requests: crate::admin_subs::Pending,
    /// Every listener's counters (`listener_stats.rs`).
    pub(crate) listener_stats: crate::listener_stats::ListenerRegistry,
    /// The session store (`None`: nothing outlives the process).
    persist: Option<Arc<crate::persist::Persist>>,
    /// Where idle connections hibernate (`None`: they never do).
    dormitory: Option<Arc<Dormitory>>,
    /// The cluster, once joined (unset: a single broker).
    cluster: std::sync::OnceLock<Arc<crate::cluster::ClusterLink>>,
    /// This node's name (see [`Core::node_id`]), computed on first use.
    node_id: std::sync::OnceLock<Box<str>>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

impl Core {
    pub(crate) fn new(
        config: Config,
        ext: Extensions,
        builtins: crate::builtin_auth::Builtins,
        persist: Option<crate::persist::Persist>,
    ) -> Arc<Self> {
        let persist = persist.map(Arc::new);
        let strategy = config
            .mqtt
            .shared_subscription_strategy
            .router_strategy(config.mqtt.shared_subscription_local_fallback);
        let mut session_config = config.session_config();
        session_config.store_events = persist.is_some();
        // Sessions record what happens to each message only for hooks that
        // asked (`core/events.rs` reads it).
        session_config.message_events = ext.message_events;
        let session_config = Arc::new(session_config);
        let retained = RetainedStore::new(&config.mqtt);
        let dormitory = (config.limits.hibernate_after_ms > 0)
            .then(|| match Dormitory::new() {
                Ok(dormitory) => Some(dormitory),
                Err(e) => {
                    tracing::warn!(error = %e, "hibernation unavailable: cannot create its epoll set");
                    None
                }
            })
            .flatten();
        Arc::new(Self {
            config,
            session_config,
            sessions: crate::registry::Registry::default(),
            router: RwLock::new(Router::new(strategy)),
            retained,
            sys_values: crate::retained::SystemValues::default(),
            metrics: Arc::default(),
            ext,
            builtins,
            shutdown: watch::channel(false).0,
            next_connection_id: AtomicU64::new(1),
            admin_requests: crate::admin_subs::Pending::default(),
            listener_stats: crate::listener_stats::ListenerRegistry::default(),
            persist,
            dormitory,
            cluster: std::sync::OnceLock::new(),
            node_id: std::sync::OnceLock::new(),
        })
    }

    /// This node's name: `cluster.node_id`, or the one derived from the
    /// host name and the data directory (the same a cluster would use).
    pub(crate) fn node_id(&self) -> &str {
        self.node_id.get_or_init(|| {
            self.config
                .cluster
                .effective_node_id(&self.config.store.data_dir)
                .into()
        })
    }

    /// The broker's counters and gauges now.
    pub(crate) fn stats(&self) -> crate::metrics::Stats {
        let mut stats = self.metrics.snapshot();
        stats.sessions = self.sessions.len() as u64;
        stats.subscriptions = self.subscription_count() as u64;
        self.retained.fill_stats(&mut stats);
        if let Some(persist) = self.persist() {
            persist.fill_stats(&mut stats);
        }
        stats
    }

    /// The cluster (`None`: a single broker).
    pub(crate) fn cluster(&self) -> Option<&Arc<crate::cluster::ClusterLink>> {
        self.cluster.get()
    }

    /// Installs the cluster link, once, before connections are accepted.
    pub(crate) fn set_cluster(&self, link: Arc<crate::cluster::ClusterLink>) {
        if self.cluster.set(link).is_err() {
            tracing::warn!("cluster link installed twice; keeping the first");
        }
    }

    /// Every session by client id.
    pub(crate) fn sessions(&self) -> &crate::registry::Registry {
        &self.sessions
    }

    /// Adds (or replaces) `key`'s subscription to `filter` (`$share/group/…`
    /// included), tagged `cleared` (see `read_acl.rs`); true when it
    /// replaced one.
    pub(crate) fn subscribe(
        &self,
        key: &SessionKey,
        filter: &str,
        sub: Subscription,
        cleared: u32,
    ) -> bool {
        let (group, bare) = split_shared(filter);
        let mut router = self.router.write();
        let replaced = router.subscribe(key.clone(), bare, group, sub, cleared);
        // Under the router's lock: the cluster hears of a filter's first and
        // last subscriber in the order the router changed. A shared group
        // is a route of its own, weighted by this node's member count
        // (`$share/g+N/f`).
        if let Some(cluster) = self.cluster() {
            match group {
                Some(group) => {
                    cluster.group_members(group, bare, router.member_count(bare, group));
                }
                None => cluster.route_present(filter),
            }
        }
        replaced
    }

    /// Removes `key`'s subscription to `filter`; false when it had none.
    pub(crate) fn unsubscribe(&self, key: &SessionKey, filter: &str) -> bool {
        let (group, bare) = split_shared(filter);
        let mut router = self.router.write();
        let removed = router.unsubscribe(key, bare, group);
        if removed && let Some(cluster) = self.cluster() {
            match group {
                Some(group) => {
                    cluster.group_members(group, bare, router.member_count(bare, group));
                }
                None if !router.has_members(bare, None) => cluster.route_absent(filter),
                None => {}
            }
        }
        removed
    }

    /// Subscriptions in the router, shared ones included.
    pub(crate) fn subscription_count(&self) -> usize {
        self.router.read().subscription_count()
    }

    /// The session store (`None`: nothing outlives the process).
    pub(crate) fn persist(&self) -> Option<&crate::persist::Persist> {
        self.persist.as_deref()
    }

    /// The session store's receiver of retained-message changes.
    pub(crate) fn retained_sink(&self) -> Option<crate::retained::ChangeSink> {
        self.persist
            .as_ref()
            .map(|persist| crate::persist::retained_sink(Arc::downgrade(persist)))
    }

    /// The dormitory, running or not (`None`: connections never hibernate).
    pub(crate) fn dormitory_built(&self) -> Option<&Arc<Dormitory>> {
        self.dormitory.as_ref()
    }

    /// The dormitory, while it takes hibernating connections.
    pub(crate) fn dormitory(&self) -> Option<&Arc<Dormitory>> {
        self.dormitory.as_ref().filter(|d| d.is_running())
    }

    /// Shutdown: writes what parked sessions reported (drops while
    /// offline), then closes the store's writer and checkpoints. Blocking.
    pub(crate) fn close_store(&self) {
        let Some(persist) = self.persist() else {
            return;
        };
        let mut batch = Vec::new();
        self.sessions.for_each(|slot| {
            if let Some(parked) = slot.inner.lock().parked.as_mut() {
                crate::persist::drain_state(&mut parked.state, &mut batch);
            }
        });
        drop(persist.submit(batch));
        persist.close();
    }

    /// True once shutdown has begun.
    pub(crate) fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Begins a graceful shutdown: sets the flag (listeners, the retained
    /// sweep and new connections watch it), then tells every live connection
    /// to close with DISCONNECT 0x8B. In that order: a driver checks the flag
    /// after its link is in its slot, so one that saw it unset is reached here.
    pub(crate) fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
        // Collected first: no registry or slot lock is held while sending.
        let mut live = Vec::new();
        self.sessions.for_each(|slot| {
            if let Some(link) = &slot.inner.lock().link {
                live.push(link.control.clone());
            }
        });
        for control in live {
            // A driver already told to close (takeover, ban) ends anyway.
            let _ = control.try_send(Control::Close(ReasonCode::SERVER_SHUTTING_DOWN));
        }
    }
}

impl SessionSlot {
    /// A live connection owns this session.
    pub(crate) fn is_online(&self) -> bool {
        self.inner.lock().link.is_some()
    }
}

/// A filter's share group (for `$share/group/filter`) and the filter matched.
fn split_shared(filter: &str) -> (Option<&str>, &str) {
    match parse_shared(filter) {
        Some(shared) => (Some(shared.group), shared.filter),
        None => (None, filter),
    }
}
