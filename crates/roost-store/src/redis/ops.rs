//! A delta as Redis writes: the same for a broker's own prefix (sent in one
//! `MULTI`/`EXEC` per batch) and for a prefix shared by a cluster (sent per
//! client in one fenced script, `shared.rs`).

use bytestring::ByteString;

use crate::codec::{encode, encode_with_capacity, message_size_hint};
use crate::delta::Delta;
use crate::error::StoreError;
use crate::record::{
    InflightRecord, QueuedMessage, RetainedRecordRef, SessionRecord, SubscriptionRecord,
};
use crate::redis::keys::{ClientKey, FIELD_RECORD, FIELD_WILL, Keys};

/// One write.
#[derive(Debug)]
pub(crate) enum Op {
    /// `HSET key field value`.
    Set(Vec<u8>, Vec<u8>, Vec<u8>),
    /// `HDEL key field`.
    Unset(Vec<u8>, Vec<u8>),
    /// `DEL key`.
    Delete(Vec<u8>),
}

/// Whose rows a delta writes.
pub(crate) enum Owner<'d> {
    /// One client's (`{c:<id>}` keys).
    Client(&'d ByteString),
    /// The broker's (retained messages, delayed publications).
    Broker,
}

/// The writes of `delta`, appended to `out`; whose rows they are.
pub(crate) fn ops<'d>(
    keys: &Keys,
    delta: &'d Delta,
    out: &mut Vec<Op>,
) -> Result<Owner<'d>, StoreError> {
    let k = keys;
    let owner = match delta {
        Delta::SessionUpsert {
            client_id,
            record,
            subscriptions,
        } => {
            session_upsert(k, client_id, record, subscriptions, out)?;
            Owner::Client(client_id)
        }
        Delta::SessionDelete { client_id } => {
            session_delete(k, client_id, out);
            Owner::Client(client_id)
        }
        Delta::SubAdd {
            client_id,
            filter,
            subscription,
        } => {
            let subs = k.client(client_id, ClientKey::Subs);
            out.push(Op::Set(subs, text(filter), encode(subscription)?));
            Owner::Client(client_id)
        }
        Delta::SubDelete { client_id, filter } => {
            out.push(Op::Unset(
                k.client(client_id, ClientKey::Subs),
                text(filter),
            ));
            Owner::Client(client_id)
        }
        Delta::MessageEnqueue {
            client_id,
            seq,
            message,
        } => {
            message_enqueue(k, client_id, *seq, message, out)?;
            Owner::Client(client_id)
        }
        Delta::MessageAck { client_id, seq } => {
            message_ack(k, client_id, *seq, out);
            Owner::Client(client_id)
        }
        Delta::OutboundStage {
            client_id,
            seq,
            packet_id,
            stage,
        } => {
            let record = encode(&InflightRecord {
                packet_id: *packet_id,
                stage: *stage,
            })?;
            out.push(Op::Set(inflight(k, client_id), number(*seq), record));
            Owner::Client(client_id)
        }
        Delta::InboundQos2 {
            client_id,
            packet_id,
            reason_code,
        } => {
            let inbound = k.client(client_id, ClientKey::Inbound);
            out.push(Op::Set(
                inbound,
                number(packet_id.get()),
                vec![reason_code.0],
            ));
            Owner::Client(client_id)
        }
        Delta::InboundQos2Release {
            client_id,
            packet_id,
        } => {
            let inbound = k.client(client_id, ClientKey::Inbound);
            out.push(Op::Unset(inbound, number(packet_id.get())));
            Owner::Client(client_id)
        }
        Delta::WillSet { client_id, will } => {
            let session = k.client(client_id, ClientKey::Session);
            out.push(Op::Set(session, text(FIELD_WILL), encode(will)?));
            Owner::Client(client_id)
        }
        Delta::WillDelete { client_id } => {
            let session = k.client(client_id, ClientKey::Session);
            out.push(Op::Unset(session, text(FIELD_WILL)));
            Owner::Client(client_id)
        }
        Delta::RetainSet {
            topic,
            message,
            stored_at,
        } => {
            let record = RetainedRecordRef {
                message,
                stored_at: *stored_at,
            };
            let key = k.retained(topic).into_bytes();
            out.push(Op::Set(key, text(topic), encode(&record)?));
            Owner::Broker
        }
        Delta::RetainDelete { topic } => {
            out.push(Op::Unset(k.retained(topic).into_bytes(), text(topic)));
            Owner::Broker
        }
        Delta::DelayedPut { id, delayed } => {
            let key = k.delayed().into_bytes();
            out.push(Op::Set(key, number(*id), encode(delayed)?));
            Owner::Broker
        }
        Delta::DelayedDelete { id } => {
            out.push(Op::Unset(k.delayed().into_bytes(), number(*id)));
            Owner::Broker
        }
    };
    Ok(owner)
}

/// A session's record, and its subscriptions replacing whatever was kept.
fn session_upsert(
    k: &Keys,
    client_id: &ByteString,
    record: &SessionRecord,
    subscriptions: &[(ByteString, SubscriptionRecord)],
    out: &mut Vec<Op>,
) -> Result<(), StoreError> {
    let session = k.client(client_id, ClientKey::Session);
    out.push(Op::Set(session, text(FIELD_RECORD), encode(record)?));
    let subs = k.client(client_id, ClientKey::Subs);
    out.push(Op::Delete(subs.clone()));
    for (filter, sub) in subscriptions {
        out.push(Op::Set(subs.clone(), text(filter), encode(sub)?));
    }
    Ok(())
}

/// A session's end: its record and will go, and every row kept for it.
fn session_delete(k: &Keys, client_id: &ByteString, out: &mut Vec<Op>) {
    let session = k.client(client_id, ClientKey::Session);
    out.push(Op::Unset(session, text(FIELD_RECORD)));
    for kind in [
        ClientKey::Subs,
        ClientKey::Queue,
        ClientKey::Inflight,
        ClientKey::Inbound,
    ] {
        out.push(Op::Delete(k.client(client_id, kind)));
    }
}

/// A queued message under its seq, not yet in flight.
fn message_enqueue(
    k: &Keys,
    client_id: &ByteString,
    seq: u64,
    message: &QueuedMessage,
    out: &mut Vec<Op>,
) -> Result<(), StoreError> {
    let hint = message_size_hint(&message.message) + 4 * message.subscription_ids.len();
    let value = encode_with_capacity(message, hint)?;
    let seq = number(seq);
    out.push(Op::Set(
        k.client(client_id, ClientKey::Queue),
        seq.clone(),
        value,
    ));
    // A new message is not in flight (see `Delta::MessageEnqueue`).
    out.push(Op::Unset(inflight(k, client_id), seq));
    Ok(())
}

/// A delivery finished: its queue row and its in-flight stage go.
fn message_ack(k: &Keys, client_id: &ByteString, seq: u64, out: &mut Vec<Op>) {
    let seq = number(seq);
    out.push(Op::Unset(
        k.client(client_id, ClientKey::Queue),
        seq.clone(),
    ));
    out.push(Op::Unset(inflight(k, client_id), seq));
}

/// A client's in-flight stages.
fn inflight(k: &Keys, client_id: &ByteString) -> Vec<u8> {
    k.client(client_id, ClientKey::Inflight)
}

/// A hash field or value from text.
fn text(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// A hash field from a number, in decimal.
fn number(n: impl ToString) -> Vec<u8> {
    n.to_string().into_bytes()
}

/// Adds `ops` to a pipeline.
pub(crate) fn pipe(pipe: &mut redis::Pipeline, ops: Vec<Op>) {
    for op in ops {
        match op {
            Op::Set(key, field, value) => pipe.hset(key, field, value).ignore(),
            Op::Unset(key, field) => pipe.hdel(key, field).ignore(),
            Op::Delete(key) => pipe.del(key).ignore(),
        };
    }
}
