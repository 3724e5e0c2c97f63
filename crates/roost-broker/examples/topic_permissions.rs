//! Topic permission checks: every user publishes only under
//! `home/<user>/`, subscribes to anything under `home/`, and `admin` may
//! also read `$SYS/#`. Denied publishes get PUBACK 0x87 (MQTT 5.0) and denied
//! filters SUBACK 0x87 (0x80 for 3.1.1). Answers are cached per session.
//!
//! Run: `cargo run -p roost-broker --example topic_permissions`, then
//! `mosquitto_pub -p 1883 -V mqttv5 -u bob -t home/alice/door -m open -q 1 -d`
//! and look for `PUBACK (... rc:135)`.

use std::sync::Arc;

use roost_broker::Broker;
use roost_broker::config::{Config, ListenerConfig};
use roost_broker::hooks::{AclResult, Action, Authorizer, ClientInfo};

struct HomePermissions;

impl Authorizer for HomePermissions {
    fn name(&self) -> &str {
        "example-home"
    }

    fn authorize(&self, client: &ClientInfo, action: Action, topic: &str) -> AclResult {
        let Some(user) = client.username.as_deref() else {
            return AclResult::Deny;
        };
        let own = topic
            .strip_prefix("home/")
            .and_then(|rest| rest.strip_prefix(user))
            .is_some_and(|rest| rest.starts_with('/'));
        let allowed = match action {
            Action::Publish { .. } => own,
            Action::Subscribe { .. } => {
                topic.starts_with("home/") || (user == "admin" && topic.starts_with("$SYS/"))
            }
        };
        if allowed {
            AclResult::Allow
        } else {
            AclResult::Deny
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = Config::default();
    config.listeners.push(ListenerConfig::loopback(1883));
    let broker = Broker::builder()
        .config(config)
        .authorizer(Arc::new(HomePermissions))
        .bind()
        .await?;
    println!("listening on {:?}", broker.local_addrs());
    broker.run_until(tokio::signal::ctrl_c()).await;
    Ok(())
}
