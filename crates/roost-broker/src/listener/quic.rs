//! A QUIC listener's accept loop: admission, then one driver per
//! connection's MQTT stream (the transport side is `transport/quic.rs`).

use std::sync::Arc;

use crate::admission::Gate;
use crate::config::ListenerConfig;
use crate::core::Core;
use crate::driver;
use crate::metrics::Metrics;
use crate::transport::QuicListener;
use crate::transport::quic::{finish, open};

/// Accepts until shutdown.
pub(super) async fn run(quic: QuicListener, core: Arc<Core>, config: Arc<ListenerConfig>) {
    let gate = Gate::new(
        Arc::clone(&core.metrics),
        core.config.limits.max_connections,
        &config,
    );
    let url = format!("{}://{}", config.kind.scheme(), quic.local_addr());
    gate.register(&core.listener_stats, url, config.kind.to_string());
    let mut shutdown = core.shutdown.subscribe();
    quic.watch_reloads(core.shutdown.subscribe());
    loop {
        let incoming = tokio::select! {
            _ = shutdown.changed() => break,
            incoming = quic.accept() => match incoming {
                Some(incoming) => incoming,
                None => break,
            },
        };
        let remote = incoming.remote_address();
        match gate.admit() {
            Ok(ticket) => {
                let (core, config) = (Arc::clone(&core), Arc::clone(&config));
                tokio::spawn(async move {
                    serve(core, config, incoming).await;
                    drop(ticket);
                });
            }
            Err(refusal) => {
                tracing::debug!(peer = %remote, listener = %quic.local_addr(), %refusal, "refusing QUIC connection");
                incoming.refuse();
            }
        }
    }
    quic.stop();
}

/// One QUIC connection: handshake, the MQTT stream, the driver, then close.
async fn serve(core: Arc<Core>, config: Arc<ListenerConfig>, incoming: quinn::Incoming) {
    let remote = incoming.remote_address();
    let (connection, stream, info) = match open(incoming, config.handshake_timeout()).await {
        Ok(opened) => opened,
        Err(e) => {
            Metrics::inc(&core.metrics.connections_refused);
            tracing::debug!(peer = %remote, error = %e, "QUIC connection not opened");
            return;
        }
    };
    driver::serve(core, config, Box::new(stream), info, None).await;
    finish(connection).await;
}
