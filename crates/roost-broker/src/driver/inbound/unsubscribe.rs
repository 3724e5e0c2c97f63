//! UNSUBSCRIBE from the client: each filter is offered to `on_unsubscribe`,
//! the others leave the router, UNSUBACK answers, and the store hears of it.

use roost_codec::{ReasonCode, Unsubscribe};
use roost_hooks::Decision;
use roost_session::Session;

use super::{Explanation, Inputs};

/// Applies each filter of an UNSUBSCRIBE and answers UNSUBACK.
pub(super) async fn unsubscribe_all(
    inputs: &Inputs<'_>,
    session: &mut Session,
    unsubscribe: &Unsubscribe,
) {
    let core = inputs.core;
    let mut refusals: Vec<Option<ReasonCode>> = vec![None; unsubscribe.filters.len()];
    let mut explanation = Explanation::default();
    if let Some(hooks) = &core.ext.hooks {
        for (filter, refusal) in unsubscribe.filters.iter().zip(refusals.iter_mut()) {
            if let Decision::Deny {
                reason,
                reason_string,
            } = core
                .ext
                .decide(hooks.on_unsubscribe(inputs.client, filter))
                .await
            {
                *refusal = Some(reason);
                explanation.add(reason_string);
            }
        }
    }
    let results: Vec<ReasonCode> = unsubscribe
        .filters
        .iter()
        .zip(refusals)
        .map(|(filter, refusal)| {
            if let Some(reason) = refusal {
                return reason;
            }
            if core.unsubscribe(inputs.key, filter) {
                ReasonCode::SUCCESS
            } else {
                ReasonCode::NO_SUBSCRIPTION_EXISTED
            }
        })
        .collect();
    session.complete_unsubscribe_explained(unsubscribe, &results, explanation.text());
    crate::persist::on_unsubscribe(core.persist(), session, unsubscribe).await;
}
