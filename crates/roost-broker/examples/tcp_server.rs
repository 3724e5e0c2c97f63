//! The smallest embedded broker: one TCP listener and hooks that log
//! connections, publishes, deliveries and drops.
//!
//! Run: `cargo run -p roost-broker --example tcp_server`, then
//! `mosquitto_sub -p 1883 -t 'demo/#' -q 1` and `mosquitto_pub -p 1883 -t demo/x -m hi -q 1`.

use std::sync::Arc;

use roost_broker::Broker;
use roost_broker::config::{Config, ListenerConfig};
use roost_broker::hooks::{
    BoxFuture, ClientInfo, Decision, DisconnectCause, DropCause, Hooks, MessageView, PublishCtx,
    PublishDecision, ready,
};

/// Prints every event it is told about; allows everything.
struct Logging;

impl Hooks for Logging {
    fn on_connect<'a>(&'a self, client: &'a ClientInfo) -> BoxFuture<'a, Decision> {
        println!(
            "connect    {} from {} ({:?})",
            client.client_id, client.peer, client.protocol
        );
        ready(Decision::Allow)
    }

    fn on_publish<'a>(&'a self, ctx: &'a mut PublishCtx<'_>) -> BoxFuture<'a, PublishDecision> {
        let m = &ctx.message;
        println!(
            "publish    {} -> {} ({} bytes, {:?})",
            ctx.client.client_id,
            m.topic,
            m.payload.len(),
            m.qos
        );
        ready(PublishDecision::Allow)
    }

    fn on_message_delivered(&self, client_id: &str, message: &MessageView) {
        println!(
            "delivered  {} to {client_id} ({:?})",
            message.topic, message.qos
        );
    }

    fn on_message_dropped(&self, client_id: &str, message: &MessageView, cause: DropCause) {
        println!("dropped    {} for {client_id}: {cause:?}", message.topic);
    }

    fn on_disconnect(&self, client: &ClientInfo, cause: DisconnectCause) {
        println!("disconnect {} ({cause:?})", client.client_id);
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = Config::default();
    config.listeners.push(ListenerConfig::loopback(1883));
    let broker = Broker::builder()
        .config(config)
        .hooks(Arc::new(Logging))
        .bind()
        .await?;
    println!("listening on {:?}", broker.local_addrs());
    broker.run_until(tokio::signal::ctrl_c()).await;
    Ok(())
}
