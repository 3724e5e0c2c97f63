//! The SCRAM credentials-file parser
//! (`user:<mechanism>:<iterations>:<salt>:<StoredKey>:<ServerKey>`).
//!
//! Invariants: nothing panics, and every accepted line writes back
//! (`to_line`) as text the parser accepts again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use roost_auth::ScramAuthenticator;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(auth) = ScramAuthenticator::from_text("fuzz.scram", text) else {
        return;
    };
    let lines: Vec<String> = auth
        .entries()
        .iter()
        .map(|(user, creds)| creds.to_line(user))
        .collect();
    let again = lines.join("\n");
    match ScramAuthenticator::from_text("again.scram", &again) {
        Ok(reparsed) => assert_eq!(reparsed.len(), auth.len()),
        Err(e) => panic!("written lines do not parse again: {e}"),
    }
});
