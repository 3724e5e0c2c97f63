//! MQTT 5.0 enhanced authentication (AUTH packets) with a custom mechanism.
//! `EXAMPLE-CHALLENGE`: the client sends its user name in CONNECT's
//! Authentication Data, the server answers AUTH 0x18 with a one-time nonce,
//! and the client must send back `<nonce>:<secret>`; success puts the user
//! name in the grant (used for authorization). Re-authentication (AUTH 0x19)
//! runs the same exchange. For real deployments the built-in SCRAM-SHA-256/512
//! (`roost_auth::ScramAuthenticator`, `[auth.scram]`) does this properly.
//!
//! Run: `cargo run -p roost-broker --example enhanced_auth`; a client that
//! supports AUTH (e.g. paho-mqtt 5.0) sets Authentication Method
//! `EXAMPLE-CHALLENGE`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use roost_broker::Broker;
use roost_broker::config::{Config, ListenerConfig};
use roost_broker::hooks::{
    AuthExchange, AuthStep, BoxFuture, ClientInfo, EnhancedAuthenticator, Grant, ReasonCode, ready,
};

const METHOD: &str = "EXAMPLE-CHALLENGE";

struct Challenge {
    next_nonce: AtomicU64,
}

impl EnhancedAuthenticator for Challenge {
    fn begin(&self, method: &str, _client: &ClientInfo) -> Option<Box<dyn AuthExchange>> {
        // Any other method: CONNACK 0x8C Bad authentication method.
        (method == METHOD).then(|| {
            let nonce = self.next_nonce.fetch_add(1, Ordering::Relaxed);
            Box::new(Exchange {
                nonce: format!("{nonce:016x}"),
                user: None,
            }) as Box<dyn AuthExchange>
        })
    }
}

/// One client's exchange: first the user name, then the answer to the nonce.
struct Exchange {
    nonce: String,
    user: Option<String>,
}

impl AuthExchange for Exchange {
    fn step(&mut self, data: Option<Bytes>) -> BoxFuture<'_, AuthStep> {
        let data = data.unwrap_or_default();
        let Ok(text) = std::str::from_utf8(&data) else {
            return ready(AuthStep::Fail(ReasonCode::NOT_AUTHORIZED));
        };
        let step = match self.user.take() {
            None if !text.is_empty() => {
                self.user = Some(text.to_owned());
                AuthStep::Continue(Bytes::from(self.nonce.clone()))
            }
            Some(user) if text == format!("{}:{}", self.nonce, secret_of(&user)) => {
                let mut grant = Grant::default();
                grant.username = Some(user);
                AuthStep::Success { data: None, grant }
            }
            _ => AuthStep::Fail(ReasonCode::NOT_AUTHORIZED),
        };
        ready(step)
    }
}

/// Where a real mechanism would look the user's credentials up.
fn secret_of(user: &str) -> String {
    format!("{user}-secret")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = Config::default();
    config.listeners.push(ListenerConfig::loopback(1883));
    let broker = Broker::builder()
        .config(config)
        .enhanced_authenticator(Arc::new(Challenge {
            next_nonce: AtomicU64::new(1),
        }))
        .bind()
        .await?;
    println!("listening on {:?}", broker.local_addrs());
    broker.run_until(tokio::signal::ctrl_c()).await;
    Ok(())
}
