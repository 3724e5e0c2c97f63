//! Roost embedded in an application, the way the seed product's README
//! shows it: a TCP server with `on_connect` / `on_publish` logging, a custom
//! user name / password check answering with reason codes, and a topic
//! permission check.
//!
//! Run: `cargo run -p roost-broker --example embedded` and connect with
//! `mosquitto_pub -p 1883 -u alice -P wonderland -t rooms/alice/lamp -m on`.

use std::sync::Arc;

use roost_broker::Broker;
use roost_broker::config::{Config, ListenerConfig};
use roost_broker::hooks::{
    AclResult, Action, AuthResult, Authenticator, Authorizer, BoxFuture, ClientInfo,
    ConnectRequest, Decision, Grant, Hooks, PublishCtx, PublishDecision, ReasonCode, ready,
};

/// Accepts `alice` / `wonderland`; refuses everyone else with 0x86.
struct Passwords;

impl Authenticator for Passwords {
    fn name(&self) -> &str {
        "example-passwords"
    }

    fn authenticate<'a>(&'a self, request: &'a ConnectRequest<'a>) -> BoxFuture<'a, AuthResult> {
        let user = request.client.username.as_deref();
        ready(match (user, request.password) {
            (Some("alice"), Some(b"wonderland")) => AuthResult::Accept(Grant::default()),
            _ => AuthResult::Refuse(ReasonCode::BAD_USER_NAME_OR_PASSWORD),
        })
    }
}

/// Each user may publish only under `rooms/<user>/`, and read everything under `rooms/`.
struct RoomPermissions;

impl Authorizer for RoomPermissions {
    fn name(&self) -> &str {
        "example-rooms"
    }

    fn authorize(&self, client: &ClientInfo, action: Action, topic: &str) -> AclResult {
        let user = client.username.as_deref().unwrap_or("");
        let allowed = match action {
            Action::Publish { .. } => topic.starts_with(&format!("rooms/{user}/")),
            Action::Subscribe { .. } => topic.starts_with("rooms/"),
        };
        if allowed {
            AclResult::Allow
        } else {
            AclResult::Deny
        }
    }
}

/// Logs connections and publishes; refuses payloads over 1 KiB with 0x97.
struct Logging;

impl Hooks for Logging {
    fn on_connect<'a>(&'a self, client: &'a ClientInfo) -> BoxFuture<'a, Decision> {
        println!("connect: {} from {}", client.client_id, client.peer);
        ready(Decision::Allow)
    }

    fn on_publish<'a>(&'a self, ctx: &'a mut PublishCtx<'_>) -> BoxFuture<'a, PublishDecision> {
        println!(
            "publish: {} -> {} ({} bytes)",
            ctx.client.client_id,
            ctx.message.topic,
            ctx.message.payload.len()
        );
        ready(if ctx.message.payload.len() > 1024 {
            PublishDecision::Deny {
                reason: ReasonCode::QUOTA_EXCEEDED,
                reason_string: Some("payload over 1 KiB".into()),
            }
        } else {
            PublishDecision::Allow
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = Config::default();
    config.listeners.push(ListenerConfig::loopback(1883));
    let broker = Broker::builder()
        .config(config)
        .authenticator(Arc::new(Passwords))
        .authorizer(Arc::new(RoomPermissions))
        .hooks(Arc::new(Logging))
        .bind()
        .await?;
    println!("listening on {:?}", broker.local_addrs());
    broker.run_until(tokio::signal::ctrl_c()).await;
    Ok(())
}
