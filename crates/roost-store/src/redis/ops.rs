//! A delta as Redis writes: the same for a broker's own prefix (sent in one
//! `MULTI`/`EXEC` per batch) and for a prefix shared by a cluster (sent per
//! client in one fenced script, `shared.rs`).

use bytestring::ByteString;

use crate::codec::{encode, encode_with_capacity, message_size_hint};
use crate::delta::Delta;
use crate::error::StoreError;
use crate::record::{InflightRecord, RetainedRecordRef};
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
    let text = |s: &str| s.as_bytes().to_vec();
    let owner = match delta {
        Delta::SessionUpsert {
            client_id,
            record,
            subscriptions,
        } => {
            out.push(Op::Set(
                k.client(client_id, ClientKey::Session),
                text(FIELD_RECORD),
                encode(record)?,
            ));
            let subs = k.client(client_id, ClientKey::Subs);
            out.push(Op::Delete(subs.clone()));
            for (filter, sub) in subscriptions {
                out.push(Op::Set(subs.clone(), text(filter), encode(sub)?));
            }
            Owner::Client(client_id)
        }
        Delta::SessionDelete { client_id } => {
            out.push(Op::Unset(
                k.client(client_id, ClientKey::Session),
                text(FIELD_RECORD),
            ));
            for kind in [
                ClientKey::Subs,
                ClientKey::Queue,
                ClientKey::Inflight,
                ClientKey::Inbound,
            ] {
                out.push(Op::Delete(k.client(client_id, kind)));
            }
            Owner::Client(client_id)
        }
        Delta::SubAdd {
            client_id,
            filter,
            subscription,
        } => {
            out.push(Op::Set(
                k.client(client_id, ClientKey::Subs),
                text(filter),
                encode(subscription)?,
            ));
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
            let hint = message_size_hint(&message.message) + 4 * message.subscription_ids.len();
            let value = encode_with_capacity(message, hint)?;
            let seq = seq.to_string().into_bytes();
            out.push(Op::Set(
                k.client(client_id, ClientKey::Queue),
                seq.clone(),
                value,
            ));
            // A new message is not in flight (see `Delta::MessageEnqueue`).
            out.push(Op::Unset(k.client(client_id, ClientKey::Inflight), seq));
            Owner::Client(client_id)
        }
        Delta::MessageAck { client_id, seq } => {
            let seq = seq.to_string().into_bytes();
            out.push(Op::Unset(
                k.client(client_id, ClientKey::Queue),
                seq.clone(),
            ));
            out.push(Op::Unset(k.client(client_id, ClientKey::Inflight), seq));
            Owner::Client(client_id)
        }
        Delta::OutboundStage {
            client_id,
            seq,
            packet_id,
            stage,
        } => {
            let record = InflightRecord {
                packet_id: *packet_id,
                stage: *stage,
            };
            out.push(Op::Set(
                k.client(client_id, ClientKey::Inflight),
                seq.to_string().into_bytes(),
                encode(&record)?,
            ));
            Owner::Client(client_id)
        }
        Delta::InboundQos2 {
            client_id,
            packet_id,
            reason_code,
        } => {
            out.push(Op::Set(
                k.client(client_id, ClientKey::Inbound),
                packet_id.get().to_string().into_bytes(),
                vec![reason_code.0],
            ));
            Owner::Client(client_id)
        }
        Delta::InboundQos2Release {
            client_id,
            packet_id,
        } => {
            out.push(Op::Unset(
                k.client(client_id, ClientKey::Inbound),
                packet_id.get().to_string().into_bytes(),
            ));
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
            out.push(Op::Set(
                k.retained(topic).into_bytes(),
                text(topic),
                encode(&record)?,
            ));
            Owner::Broker
        }
        Delta::RetainDelete { topic } => {
            out.push(Op::Unset(k.retained(topic).into_bytes(), text(topic)));
            Owner::Broker
        }
        Delta::WillSet { client_id, will } => {
            out.push(Op::Set(
                k.client(client_id, ClientKey::Session),
                text(FIELD_WILL),
                encode(will)?,
            ));
            Owner::Client(client_id)
        }
        Delta::WillDelete { client_id } => {
            out.push(Op::Unset(
                k.client(client_id, ClientKey::Session),
                text(FIELD_WILL),
            ));
            Owner::Client(client_id)
        }
        Delta::DelayedPut { id, delayed } => {
            out.push(Op::Set(
                k.delayed().into_bytes(),
                id.to_string().into_bytes(),
                encode(delayed)?,
            ));
            Owner::Broker
        }
        Delta::DelayedDelete { id } => {
            out.push(Op::Unset(
                k.delayed().into_bytes(),
                id.to_string().into_bytes(),
            ));
            Owner::Broker
        }
    };
    Ok(owner)
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
