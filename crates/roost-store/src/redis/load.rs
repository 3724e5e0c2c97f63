//! Reads every key under the prefix into a [`StoreState`]. Not atomic
//! across keys: run it before the writer starts.

use bytestring::ByteString;
use roost_codec::{PacketId, ReasonCode};

use crate::codec::decode;
use crate::error::StoreError;
use crate::redis::connection::Link;
use crate::redis::keys::{ClientKey, FIELD_RECORD, FIELD_WILL, Keys};
use crate::state::StoreState;

/// Keys fetched per pipeline.
const CHUNK: usize = 256;

type Hash = Vec<(Vec<u8>, Vec<u8>)>;

/// Every key matching `pattern` (SCAN, so the server is not blocked).
pub(crate) fn scan(link: &Link, pattern: &str) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut out = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = link.run(|c| {
            redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000)
                .query(c)
        })?;
        out.extend(keys);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    // SCAN may return a key more than once.
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

pub(crate) fn hgetall_many(link: &Link, keys: &[Vec<u8>]) -> Result<Vec<Hash>, StoreError> {
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(CHUNK) {
        let mut pipe = redis::pipe();
        for k in chunk {
            pipe.hgetall(k);
        }
        let hashes: Vec<Hash> = link.run(|c| pipe.query(c))?;
        out.extend(hashes);
    }
    Ok(out)
}

fn text(bytes: Vec<u8>, what: &str) -> Result<ByteString, StoreError> {
    String::from_utf8(bytes)
        .map(ByteString::from)
        .map_err(|_| StoreError::Corrupt(format!("{what} is not UTF-8")))
}

fn number<T: std::str::FromStr>(bytes: &[u8], what: &str) -> Result<T, StoreError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("{what}: bad number field")))
}

/// Loads everything under the prefix.
pub(crate) fn load(link: &Link, keys: &Keys) -> Result<StoreState, StoreError> {
    let mut state = StoreState::default();
    let client_keys = scan(link, &keys.client_pattern())?;
    let hashes = hgetall_many(link, &client_keys)?;
    for (key, hash) in client_keys.iter().zip(hashes) {
        let Some((id, kind)) = keys.parse_client(key) else {
            continue; // not one of ours (e.g. a future key kind)
        };
        let id = text(id.to_vec(), "client id")?;
        for (field, value) in hash {
            add_client_field(&mut state, &id, kind, field, &value)?;
        }
    }
    let buckets = scan(link, &keys.retained_pattern())?;
    for hash in hgetall_many(link, &buckets)? {
        for (topic, value) in hash {
            state
                .retained
                .insert(text(topic, "retained topic")?, decode(&value, "retained")?);
        }
    }
    for hash in hgetall_many(link, &[keys.delayed().into_bytes()])? {
        for (id, value) in hash {
            state
                .delayed
                .insert(number(&id, "delayed id")?, decode(&value, "delayed")?);
        }
    }
    Ok(state)
}

pub(crate) fn add_client_field(
    state: &mut StoreState,
    id: &ByteString,
    kind: ClientKey,
    field: Vec<u8>,
    value: &[u8],
) -> Result<(), StoreError> {
    match kind {
        ClientKey::Session if field == FIELD_RECORD.as_bytes() => {
            state.sessions.insert(id.clone(), decode(value, "session")?);
        }
        ClientKey::Session if field == FIELD_WILL.as_bytes() => {
            state.wills.insert(id.clone(), decode(value, "will")?);
        }
        // Other session fields belong to the cluster (owner token, …).
        ClientKey::Session => {}
        ClientKey::Subs => {
            let filter = text(field, "filter")?;
            state
                .subscriptions
                .insert((id.clone(), filter), decode(value, "subscription")?);
        }
        ClientKey::Queue => {
            let seq = number(&field, "queue")?;
            state
                .messages
                .insert((id.clone(), seq), decode(value, "message")?);
        }
        ClientKey::Inflight => {
            let seq = number(&field, "inflight")?;
            state
                .inflight
                .insert((id.clone(), seq), decode(value, "inflight")?);
        }
        ClientKey::Inbound => {
            let pid = PacketId::new(number(&field, "inbound")?)
                .ok_or_else(|| StoreError::Corrupt("inbound: packet id 0".into()))?;
            let [reason] = <[u8; 1]>::try_from(value)
                .map_err(|_| StoreError::Corrupt("inbound: reason code".into()))?;
            state.inbound.insert((id.clone(), pid), ReasonCode(reason));
        }
    }
    Ok(())
}
