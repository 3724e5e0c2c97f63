//! The password-file parser (Mosquitto `user:hash` lines).
//!
//! Invariants: nothing panics; every accepted entry has a non-empty user
//! name without `:`; its hash writes back (`encode`) to text that parses to
//! the same hash; cheap hashes verify without panicking (argon2id and
//! high-iteration PBKDF2 are left out: their cost comes from the file).
#![no_main]

use libfuzzer_sys::fuzz_target;
use roost_auth::PasswordFile;
use roost_auth::password::PasswordHash;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = PasswordFile::from_text("fuzz.passwd", text) else {
        return;
    };
    for user in file.users() {
        assert!(!user.is_empty() && !user.contains(':'), "bad user name {user:?}");
        let Some(hash) = file.hash_of(&user) else {
            panic!("listed user {user:?} has no hash");
        };
        let encoded = hash.encode();
        match PasswordHash::parse(&encoded) {
            Ok(again) => assert_eq!(again, hash, "hash does not survive encode/parse"),
            Err(e) => panic!("encoded hash does not parse again: {e}"),
        }
        let cheap = match &hash {
            PasswordHash::Sha512 { .. } => true,
            PasswordHash::Pbkdf2Sha512 { iterations, .. } => *iterations <= 1000,
            PasswordHash::Argon2id(_) => false,
        };
        if cheap {
            let _ = hash.verify(b"password");
            let _ = file.check(&user, data);
        }
    }
});
