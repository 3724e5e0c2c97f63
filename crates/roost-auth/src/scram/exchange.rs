//! One server-side SCRAM exchange.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use roost_hooks::{AuthExchange, AuthStep, BoxFuture, Grant, ReasonCode};
use subtle::ConstantTimeEq;

use super::messages::{parse_client_final, parse_client_first};
use super::{Inner, Mechanism, ScramCredentials};

/// Where the exchange is.
enum State {
    /// Waiting for client-first-message.
    Start,
    /// server-first-message sent; waiting for client-final-message.
    SentServerFirst(Box<Pending>),
    /// Finished (successfully or not); any further data is a protocol error.
    Done,
}

struct Pending {
    username: String,
    credentials: ScramCredentials,
    /// False for the stand-in credentials of an unknown user.
    real: bool,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

/// The per-connection state of a SCRAM exchange. `Debug` shows only the stage.
pub(crate) struct ScramExchange {
    inner: Arc<Inner>,
    mechanism: Mechanism,
    state: State,
}

impl fmt::Debug for ScramExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match self.state {
            State::Start => "start",
            State::SentServerFirst(_) => "sent-server-first",
            State::Done => "done",
        };
        f.debug_struct("ScramExchange")
            .field("mechanism", &self.mechanism)
            .field("stage", &stage)
            .finish()
    }
}

fn fail(why: &str) -> AuthStep {
    tracing::debug!(why, "scram: authentication failed");
    AuthStep::Fail(ReasonCode::NOT_AUTHORIZED)
}

impl ScramExchange {
    pub(crate) fn new(inner: Arc<Inner>, mechanism: Mechanism) -> Self {
        Self {
            inner,
            mechanism,
            state: State::Start,
        }
    }

    fn client_first(&mut self, data: &[u8]) -> AuthStep {
        let Ok(text) = std::str::from_utf8(data) else {
            return fail("client-first-message is not UTF-8");
        };
        let msg = match parse_client_first(text) {
            Ok(m) => m,
            Err(why) => return fail(why),
        };
        let stored = self
            .inner
            .credentials
            .load()
            .get(&(msg.username.clone(), self.mechanism))
            .cloned();
        let (credentials, real) = match stored {
            Some(c) => (c, true),
            None => (self.stand_in(&msg.username), false),
        };
        let mut server_nonce = [0u8; 18];
        rand::fill(&mut server_nonce);
        let nonce = format!("{}{}", msg.nonce, STANDARD.encode(server_nonce));
        let server_first = format!(
            "r={nonce},s={},i={}",
            STANDARD.encode(credentials.salt()),
            credentials.iterations()
        );
        let reply = Bytes::from(server_first.clone().into_bytes());
        self.state = State::SentServerFirst(Box::new(Pending {
            username: msg.username,
            credentials,
            real,
            gs2_header: msg.gs2_header.to_owned(),
            client_first_bare: msg.bare.to_owned(),
            server_first,
            nonce,
        }));
        AuthStep::Continue(reply)
    }

    /// Believable credentials for a user that does not exist: the salt is
    /// stable per user name within this process; the keys match no password.
    fn stand_in(&self, username: &str) -> ScramCredentials {
        let m = self.mechanism;
        let seed = [m.name().as_bytes(), b"\0", username.as_bytes()].concat();
        let mut salt = m.hmac(&self.inner.fake_key, &seed);
        salt.truncate(16);
        let stored = m.hmac(
            &self.inner.fake_key,
            &[b"stored\0".as_slice(), &seed].concat(),
        );
        let server = m.hmac(
            &self.inner.fake_key,
            &[b"server\0".as_slice(), &seed].concat(),
        );
        match ScramCredentials::from_parts(
            m,
            salt.clone(),
            self.inner.unknown_iterations,
            stored,
            server,
        ) {
            Ok(c) => c,
            // Cannot happen (lengths come from the same hash); still fail closed.
            Err(_) => ScramCredentials::derive(m, &self.inner.fake_key, &salt, 1),
        }
    }

    fn client_final(&self, pending: &Pending, data: &[u8]) -> AuthStep {
        let Ok(text) = std::str::from_utf8(data) else {
            return fail("client-final-message is not UTF-8");
        };
        let msg = match parse_client_final(text) {
            Ok(m) => m,
            Err(why) => return fail(why),
        };
        let cbind_ok = STANDARD
            .decode(msg.channel_binding)
            .is_ok_and(|c| c == pending.gs2_header.as_bytes());
        if !cbind_ok {
            return fail("channel-binding attribute does not echo the GS2 header");
        }
        if msg.nonce != pending.nonce {
            return fail("nonce mismatch");
        }
        let Ok(proof) = STANDARD.decode(msg.proof) else {
            return fail("proof is not base64");
        };
        let m = self.mechanism;
        if proof.len() != m.output_len() {
            return fail("proof has the wrong length");
        }
        let auth_message = format!(
            "{},{},{}",
            pending.client_first_bare, pending.server_first, msg.without_proof
        );
        let creds = &pending.credentials;
        let client_signature = m.hmac(creds.stored_key(), auth_message.as_bytes());
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        let proof_ok = bool::from(m.hash(&client_key).ct_eq(creds.stored_key()));
        if !(proof_ok && pending.real) {
            return fail("wrong proof or unknown user");
        }
        let server_signature = m.hmac(creds.server_key(), auth_message.as_bytes());
        let server_final = format!("v={}", STANDARD.encode(server_signature));
        let mut grant = Grant::default();
        grant.username = Some(pending.username.clone());
        AuthStep::Success {
            data: Some(Bytes::from(server_final.into_bytes())),
            grant,
        }
    }
}

impl AuthExchange for ScramExchange {
    fn step(&mut self, data: Option<Bytes>) -> BoxFuture<'_, AuthStep> {
        let data = data.unwrap_or_default();
        let step = match std::mem::replace(&mut self.state, State::Done) {
            State::Start => self.client_first(&data),
            State::SentServerFirst(pending) => self.client_final(&pending, &data),
            State::Done => AuthStep::Fail(ReasonCode::PROTOCOL_ERROR),
        };
        roost_hooks::ready(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scram::ScramAuthenticator;
    use base64::engine::general_purpose::STANDARD;

    /// The SCRAM-SHA-256 exchange printed in RFC 7677 §3.
    #[tokio::test]
    async fn rfc_7677_example_exchange() {
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let creds = ScramCredentials::derive(Mechanism::Sha256, b"pencil", &salt, 4096);
        let auth = ScramAuthenticator::new();
        let nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let mut ex = ScramExchange::new(Arc::clone(&auth.inner), Mechanism::Sha256);
        ex.state = State::SentServerFirst(Box::new(Pending {
            username: "user".into(),
            credentials: creds,
            real: true,
            gs2_header: "n,,".into(),
            client_first_bare: "n=user,r=rOprNGfwEbeRWgbNEkqO".into(),
            server_first: format!("r={nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),
            nonce: nonce.into(),
        }));
        let client_final =
            format!("c=biws,r={nonce},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
        let step = ex.step(Some(Bytes::from(client_final))).await;
        let AuthStep::Success { data, grant } = step else {
            panic!("expected success, got {step:?}");
        };
        assert_eq!(
            data.as_deref(),
            Some(&b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="[..])
        );
        assert_eq!(grant.username.as_deref(), Some("user"));
    }
}
