//! Reads every row of a consistent fjall snapshot into a [`StoreState`].

use std::path::Path;

use fjall::{Database, Readable};

use crate::codec::decode;
use crate::disk::fjall_error;
use crate::disk::keys;
use crate::disk::keyspaces::{Keyspaces, Ks};
use crate::error::StoreError;
use crate::record::{InflightRecord, QueuedMessage};
use crate::state::StoreState;
use roost_codec::ReasonCode;

/// A `messages` value: the `QueuedMessage`, then, when its stage was
/// written in the same batch as its enqueue, the `InflightRecord`
/// (`batch.rs`). Format 1 never wrote the second part.
fn decode_message_row(
    bytes: &[u8],
    what: &str,
) -> Result<(QueuedMessage, Option<InflightRecord>), StoreError> {
    let (message, rest) = postcard::take_from_bytes::<QueuedMessage>(bytes)
        .map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))?;
    if rest.is_empty() {
        return Ok((message, None));
    }
    let (stage, rest) = postcard::take_from_bytes::<InflightRecord>(rest)
        .map_err(|e| StoreError::Corrupt(format!("{what}: folded inflight state: {e}")))?;
    if !rest.is_empty() {
        return Err(StoreError::Corrupt(format!(
            "{what}: {} bytes after the folded inflight state",
            rest.len()
        )));
    }
    Ok((message, Some(stage)))
}

/// Loads the whole store as of one instant.
pub(crate) fn load(db: &Database, ks: &Keyspaces, path: &Path) -> Result<StoreState, StoreError> {
    let snapshot = db.snapshot();
    let mut state = StoreState::default();
    for kind in Ks::ALL {
        let what = kind.name();
        for guard in snapshot.iter(ks.get(kind)) {
            let (key, value) = guard
                .into_inner()
                .map_err(|e| fjall_error(e, path, &format!("reading {what}")))?;
            match kind {
                Ks::Sessions => {
                    let id = keys::parse_client(&key, what)?;
                    state.sessions.insert(id, decode(&value, what)?);
                }
                Ks::Subscriptions => {
                    let k = keys::parse_client_text(&key, what)?;
                    state.subscriptions.insert(k, decode(&value, what)?);
                }
                Ks::Messages => {
                    let k = keys::parse_client_seq(&key, what)?;
                    let (message, folded) = decode_message_row(&value, what)?;
                    // A standalone inflight row (read after) is newer and
                    // replaces a folded stage.
                    if let Some(stage) = folded {
                        state.inflight.insert(k.clone(), stage);
                    }
                    state.messages.insert(k, message);
                }
                Ks::Inflight => {
                    let k = keys::parse_client_seq(&key, what)?;
                    state.inflight.insert(k, decode(&value, what)?);
                }
                Ks::Inbound => {
                    let k = keys::parse_client_packet_id(&key, what)?;
                    let [reason] = <[u8; 1]>::try_from(&value[..])
                        .map_err(|_| StoreError::Corrupt(format!("{what}: reason code")))?;
                    state.inbound.insert(k, ReasonCode(reason));
                }
                Ks::Retained => {
                    let topic = keys::parse_topic(&key, what)?;
                    state.retained.insert(topic, decode(&value, what)?);
                }
                Ks::Wills => {
                    let id = keys::parse_client(&key, what)?;
                    state.wills.insert(id, decode(&value, what)?);
                }
                Ks::Delayed => {
                    let id = keys::parse_u64(&key, what)?;
                    state.delayed.insert(id, decode(&value, what)?);
                }
            }
        }
    }
    Ok(state)
}
