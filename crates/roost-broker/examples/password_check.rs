//! A custom user name / password check that answers with MQTT reason codes:
//! 0x86 for wrong credentials, 0x8A for a banned user, 0x87 for a user that
//! may not use this listener; clients without a user name are left to the
//! listener's anonymous policy.
//!
//! Run: `cargo run -p roost-broker --example password_check`, then
//! `mosquitto_pub -p 1883 -u alice -P wonderland -t a -m hi` (accepted) or
//! `-P wrong` (refused: "Bad User Name or Password").

use std::collections::HashMap;
use std::sync::Arc;

use roost_broker::Broker;
use roost_broker::config::{Config, ListenerConfig};
use roost_broker::hooks::{
    AuthResult, Authenticator, BoxFuture, ConnectRequest, Grant, ListenerKind, ReasonCode, ready,
};

/// Users and their passwords. A real one stores hashes (see
/// `roost_auth::PasswordFile`) and compares in constant time.
struct Users {
    passwords: HashMap<&'static str, &'static str>,
}

impl Authenticator for Users {
    fn name(&self) -> &str {
        "example-users"
    }

    fn authenticate<'a>(&'a self, request: &'a ConnectRequest<'a>) -> BoxFuture<'a, AuthResult> {
        let Some(user) = request.client.username.as_deref() else {
            // No user name: not ours to decide (anonymous policy applies).
            return ready(AuthResult::Ignore);
        };
        ready(match (user, self.passwords.get(user)) {
            ("mallory", _) => AuthResult::Refuse(ReasonCode::BANNED),
            ("guest", _) if request.client.listener != ListenerKind::Ws => {
                AuthResult::Refuse(ReasonCode::NOT_AUTHORIZED)
            }
            (_, Some(expected)) if request.password == Some(expected.as_bytes()) => {
                AuthResult::Accept(Grant::default())
            }
            _ => AuthResult::Refuse(ReasonCode::BAD_USER_NAME_OR_PASSWORD),
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = Config::default();
    config.listeners.push(ListenerConfig::loopback(1883));
    let users = Users {
        passwords: HashMap::from([("alice", "wonderland"), ("guest", "guest")]),
    };
    let broker = Broker::builder()
        .config(config)
        .authenticator(Arc::new(users))
        .bind()
        .await?;
    println!("listening on {:?}", broker.local_addrs());
    broker.run_until(tokio::signal::ctrl_c()).await;
    Ok(())
}
