//! UNSUBSCRIBE: nothing to check here (the decoder enforced the format); the
//! broker updates the router and answers with `Session::complete_unsubscribe`.

use roost_codec::Unsubscribe;

use super::super::{Inbound, Session};

impl Session {
    pub(super) fn handle_unsubscribe(&mut self, unsubscribe: Unsubscribe) -> Inbound {
        Inbound::Unsubscribe(unsubscribe)
    }
}
