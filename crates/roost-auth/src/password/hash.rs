//! Password hashes in the formats Mosquitto's password files use.

use std::fmt;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash as PhcHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT};
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

/// Iterations Mosquitto 2.0 uses for new `$7$` hashes.
pub const DEFAULT_PBKDF2_ITERATIONS: u32 = 101;
/// Salt length Mosquitto 2.0 uses for new `$7$` hashes.
pub const DEFAULT_SALT_LEN: usize = 12;
const HASH_LEN: usize = 64;
/// Most memory one argon2id check may use (256 MiB, 13 times the default
/// 19 MiB): every CONNECT naming the user pays it.
const MAX_ARGON2_M_COST_KIB: u32 = 256 * 1024;

/// How new hashes are made by [`PasswordHash::create`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashKind {
    /// `$7$`: PBKDF2-HMAC-SHA512, random 12-byte salt (Mosquitto 2.0's default).
    #[default]
    Pbkdf2Sha512,
    /// `$argon2id$...` PHC string (Mosquitto 2.1 built with libargon2).
    Argon2id,
    /// `$6$`: one SHA-512 round over password and salt (`mosquitto_passwd -H
    /// sha512`, Mosquitto 1.x's format). Weak; for brokers that need it.
    Sha512,
}

/// One stored password hash. `Debug` does not print the hash.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordHash {
    /// `$6$<salt>$<hash>`: SHA-512(password ‖ salt). Legacy, weak; accepted for compatibility.
    Sha512 {
        /// Salt bytes.
        salt: Vec<u8>,
        /// SHA-512 output.
        hash: [u8; HASH_LEN],
    },
    /// `$7$<iterations>$<salt>$<hash>`: PBKDF2-HMAC-SHA512, 64-byte output.
    Pbkdf2Sha512 {
        /// PBKDF2 iteration count.
        iterations: u32,
        /// Salt bytes (12 or 64).
        salt: Vec<u8>,
        /// Derived key.
        hash: [u8; HASH_LEN],
    },
    /// An `$argon2id$` PHC string, validated when parsed.
    Argon2id(String),
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sha512 { .. } => f.write_str("PasswordHash::Sha512(<redacted>)"),
            Self::Pbkdf2Sha512 { iterations, .. } => {
                write!(
                    f,
                    "PasswordHash::Pbkdf2Sha512(iterations={iterations}, <redacted>)"
                )
            }
            Self::Argon2id(_) => f.write_str("PasswordHash::Argon2id(<redacted>)"),
        }
    }
}

impl PasswordHash {
    /// Parses the hash part of a password-file line. The error says what is
    /// wrong without repeating the hash.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.starts_with("$argon2id$") {
            let phc = PhcHash::new(text).map_err(|e| format!("invalid argon2id hash: {e}"))?;
            // Checked now, not at the first login: a hash that can never
            // verify, or whose cost the broker would pay on every attempt
            // by anyone naming this user, is a load error.
            let params = argon2::Params::try_from(&phc)
                .map_err(|e| format!("invalid argon2id parameters: {e}"))?;
            if phc.hash.is_none() {
                return Err("an argon2id hash needs its hash part".into());
            }
            if params.m_cost() > MAX_ARGON2_M_COST_KIB {
                return Err(format!(
                    "argon2id memory cost {} KiB is above the {MAX_ARGON2_M_COST_KIB} KiB limit",
                    params.m_cost()
                ));
            }
            return Ok(Self::Argon2id(text.to_owned()));
        }
        if let Some(rest) = text.strip_prefix("$6$") {
            let (salt, hash) = rest
                .split_once('$')
                .ok_or("a $6$ hash needs the form $6$<salt>$<hash>")?;
            let salt = decode_b64(salt, "salt")?;
            let hash = decode_hash(hash)?;
            return Ok(Self::Sha512 { salt, hash });
        }
        if let Some(rest) = text.strip_prefix("$7$") {
            let mut parts = rest.splitn(3, '$');
            let (Some(iterations), Some(salt), Some(hash)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err("a $7$ hash needs the form $7$<iterations>$<salt>$<hash>".into());
            };
            let iterations: u32 = iterations
                .parse()
                .ok()
                .filter(|&n| n > 0)
                .ok_or("the iteration count of a $7$ hash must be a positive integer")?;
            let salt = decode_b64(salt, "salt")?;
            if salt.len() != 12 && salt.len() != 64 {
                return Err(format!(
                    "the salt of a $7$ hash must be 12 or 64 bytes, not {}",
                    salt.len()
                ));
            }
            let hash = decode_hash(hash)?;
            return Ok(Self::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            });
        }
        Err("unknown hash format (expected $6$, $7$ or $argon2id$)".into())
    }

    /// Hashes `password` with a fresh random salt.
    pub fn create(password: &[u8], kind: HashKind) -> Result<Self, String> {
        match kind {
            HashKind::Pbkdf2Sha512 => {
                let mut salt = vec![0u8; DEFAULT_SALT_LEN];
                rand::fill(salt.as_mut_slice());
                Ok(Self::pbkdf2(password, salt, DEFAULT_PBKDF2_ITERATIONS))
            }
            HashKind::Sha512 => {
                let mut salt = vec![0u8; DEFAULT_SALT_LEN];
                rand::fill(salt.as_mut_slice());
                let mut d = Sha512::new();
                d.update(password);
                d.update(&salt);
                let mut hash = [0u8; HASH_LEN];
                hash.copy_from_slice(d.finalize().as_slice());
                Ok(Self::Sha512 { salt, hash })
            }
            HashKind::Argon2id => {
                let mut salt = [0u8; 16];
                rand::fill(&mut salt);
                let phc = Argon2::default()
                    .hash_password_with_salt(password, &salt)
                    .map_err(|e| format!("argon2 failed: {e}"))?;
                Ok(Self::Argon2id(phc.to_string()))
            }
        }
    }

    /// A `$7$` hash of `password` with the given salt and iteration count.
    pub fn pbkdf2(password: &[u8], salt: Vec<u8>, iterations: u32) -> Self {
        let mut hash = [0u8; HASH_LEN];
        pbkdf2::pbkdf2_hmac::<Sha512>(password, &salt, iterations, &mut hash);
        Self::Pbkdf2Sha512 {
            iterations,
            salt,
            hash,
        }
    }

    /// True when `password` matches. Digests are compared in constant time.
    pub fn verify(&self, password: &[u8]) -> bool {
        match self {
            Self::Sha512 { salt, hash } => {
                let mut d = Sha512::new();
                d.update(password);
                d.update(salt);
                let out = d.finalize();
                bool::from(out.as_slice().ct_eq(hash.as_slice()))
            }
            Self::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => {
                let mut out = [0u8; HASH_LEN];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, *iterations, &mut out);
                bool::from(out.ct_eq(hash))
            }
            Self::Argon2id(phc) => match PhcHash::new(phc) {
                Ok(parsed) => Argon2::default().verify_password(password, &parsed).is_ok(),
                Err(_) => false,
            },
        }
    }

    /// True when verifying is slow enough to belong on a blocking thread.
    pub fn is_expensive(&self) -> bool {
        match self {
            Self::Sha512 { .. } => false,
            Self::Pbkdf2Sha512 { iterations, .. } => *iterations > 10_000,
            Self::Argon2id(_) => true,
        }
    }

    /// The text form used in password files.
    pub fn encode(&self) -> String {
        match self {
            Self::Sha512 { salt, hash } => {
                format!("$6${}${}", STANDARD.encode(salt), STANDARD.encode(hash))
            }
            Self::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => format!(
                "$7${iterations}${}${}",
                STANDARD.encode(salt),
                STANDARD.encode(hash)
            ),
            Self::Argon2id(phc) => phc.clone(),
        }
    }
}

fn decode_b64(text: &str, what: &str) -> Result<Vec<u8>, String> {
    STANDARD_PAD_INDIFFERENT
        .decode(text)
        .map_err(|_| format!("the {what} is not valid base64"))
}

fn decode_hash(text: &str) -> Result<[u8; HASH_LEN], String> {
    let bytes = decode_b64(text, "hash")?;
    <[u8; HASH_LEN]>::try_from(bytes.as_slice())
        .map_err(|_| format!("the hash must be {HASH_LEN} bytes, not {}", bytes.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pbkdf2_round_trip() {
        let h = PasswordHash::create(b"pw", HashKind::Pbkdf2Sha512).unwrap();
        let text = h.encode();
        assert!(text.starts_with("$7$101$"));
        let parsed = PasswordHash::parse(&text).unwrap();
        assert!(parsed.verify(b"pw"));
        assert!(!parsed.verify(b"pW"));
    }

    #[test]
    fn argon2id_round_trip() {
        let h = PasswordHash::create(b"pw", HashKind::Argon2id).unwrap();
        let parsed = PasswordHash::parse(&h.encode()).unwrap();
        assert!(parsed.encode().starts_with("$argon2id$"));
        assert!(parsed.verify(b"pw"));
        assert!(!parsed.verify(b"px"));
    }

    #[test]
    fn debug_hides_the_hash() {
        let h = PasswordHash::create(b"pw", HashKind::Pbkdf2Sha512).unwrap();
        let text = h.encode();
        let salt = text.split('$').nth(3).unwrap();
        assert!(!format!("{h:?}").contains(salt));
    }

    #[test]
    fn malformed_hashes_are_rejected_with_a_reason() {
        for bad in [
            "plain",
            "$7$x$AAAA$AAAA",
            "$7$101$!!$AAAA",
            "$6$AAAA",
            "$argon2id$nope",
            // No hash part; parameters the algorithm refuses; 1 GiB per check.
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0",
            "$argon2id$v=19$m=1,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
            "$argon2id$v=19$m=1048576,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
        ] {
            assert!(PasswordHash::parse(bad).is_err(), "{bad}");
        }
        let short_salt = format!(
            "$7$101${}${}",
            STANDARD.encode([0u8; 5]),
            STANDARD.encode([0u8; 64])
        );
        assert!(
            PasswordHash::parse(&short_salt)
                .unwrap_err()
                .contains("12 or 64")
        );
    }
}
