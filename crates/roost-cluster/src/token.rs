//! Claim tokens held compactly. A token is a v4 uuid written as 32
//! lowercase hex digits (what Redis stores and scripts compare); a node
//! holds one per connection in its maps, as the 128 bits the text spells:
//! 16 bytes and no allocation instead of a `String` (RSS per connection in
//! cluster mode, docs/performance.md).

/// A claim's token held compactly: the 128 bits its text (a uuid as 32
/// lowercase hex digits, what [`crate::Cluster::claim`] makes) spells; 16 bytes
/// and no allocation per connection instead of a `String` (RSS per
/// connection in cluster mode, docs/performance.md). `None` for any other
/// text, which therefore never equals a compact token.
pub fn compact_token(token: &str) -> Option<u128> {
    let hex = token.len() == 32
        && token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    hex.then(|| u128::from_str_radix(token, 16).ok()).flatten()
}

/// The text of a compact token (the inverse of [`compact_token`]); the
/// store's spelling, which its fenced writes send.
pub fn token_text(token: u128) -> String {
    roost_store::token_text(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_and_its_text_map_one_to_one() {
        let uuid = uuid::Uuid::new_v4();
        let text = uuid.simple().to_string();
        assert_eq!(token_text(uuid.as_u128()), text);
        assert_eq!(compact_token(&text), Some(uuid.as_u128()));
        assert_eq!(compact_token(&token_text(0)), Some(0));
        // Only the exact spelling: no sign, no upper case, 32 digits.
        assert_eq!(compact_token(&text.to_uppercase()), None);
        assert_eq!(compact_token(&format!("+{}", &text[1..])), None);
        assert_eq!(compact_token(&text[1..]), None);
        assert_eq!(compact_token("t1"), None);
    }
}
