//! Parsing the client's SCRAM messages (RFC 5802 §7), without channel binding.

/// Longest client nonce accepted.
const MAX_NONCE_LEN: usize = 256;

/// The parsed client-first-message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ClientFirst<'a> {
    /// The GS2 header exactly as sent (`n,,`, `y,,` or with `a=`), echoed in `c=`.
    pub(crate) gs2_header: &'a str,
    /// client-first-message-bare, part of the AuthMessage.
    pub(crate) bare: &'a str,
    /// The decoded user name.
    pub(crate) username: String,
    /// The client's nonce.
    pub(crate) nonce: &'a str,
}

/// Parses `gs2-header client-first-message-bare`.
pub(crate) fn parse_client_first(msg: &str) -> Result<ClientFirst<'_>, &'static str> {
    let (flag, rest) = msg.split_once(',').ok_or("missing GS2 header")?;
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => return Err("channel binding is not supported"),
        _ => return Err("bad channel-binding flag"),
    }
    let (authzid, bare) = rest.split_once(',').ok_or("missing GS2 header")?;
    let gs2_header = &msg[..msg.len() - bare.len()];
    let mut attrs = bare.split(',');
    let user_attr = attrs.next().ok_or("missing user name")?;
    if user_attr.starts_with("m=") {
        return Err("mandatory extensions are not supported");
    }
    let username = decode_saslname(user_attr.strip_prefix("n=").ok_or("missing user name")?)?;
    if username.is_empty() {
        return Err("empty user name");
    }
    if !authzid.is_empty() {
        let authzid = decode_saslname(
            authzid
                .strip_prefix("a=")
                .ok_or("bad authorization identity")?,
        )?;
        if authzid != username {
            return Err("authorization identity differs from the user name");
        }
    }
    let nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .ok_or("missing nonce")?;
    if !valid_nonce(nonce) {
        return Err("bad nonce");
    }
    Ok(ClientFirst {
        gs2_header,
        bare,
        username,
        nonce,
    })
}

/// The parsed client-final-message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ClientFinal<'a> {
    /// The base64 channel-binding attribute (`c=`).
    pub(crate) channel_binding: &'a str,
    /// The combined nonce (`r=`).
    pub(crate) nonce: &'a str,
    /// client-final-message-without-proof, part of the AuthMessage.
    pub(crate) without_proof: &'a str,
    /// The base64 proof (`p=`).
    pub(crate) proof: &'a str,
}

/// Parses `c=...,r=...[,ext...],p=...`.
pub(crate) fn parse_client_final(msg: &str) -> Result<ClientFinal<'_>, &'static str> {
    let idx = msg.rfind(",p=").ok_or("missing proof")?;
    let without_proof = &msg[..idx];
    let proof = &msg[idx + 3..];
    let mut attrs = without_proof.split(',');
    let channel_binding = attrs
        .next()
        .and_then(|a| a.strip_prefix("c="))
        .ok_or("missing channel binding")?;
    let nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .ok_or("missing nonce")?;
    Ok(ClientFinal {
        channel_binding,
        nonce,
        without_proof,
        proof,
    })
}

/// Decodes a saslname: `=2C` is `,`, `=3D` is `=`; any other `=` is an error.
fn decode_saslname(text: &str) -> Result<String, &'static str> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let esc = rest.get(i..i + 3).ok_or("bad escape in user name")?;
        match esc {
            "=2C" => out.push(','),
            "=3D" => out.push('='),
            _ => return Err("bad escape in user name"),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Printable ASCII except `,`, and not absurdly long.
pub(crate) fn valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce.len() <= MAX_NONCE_LEN
        && nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_first_is_split_as_rfc_5802_says() {
        let m = parse_client_first("n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL").unwrap();
        assert_eq!(m.gs2_header, "n,,");
        assert_eq!(m.bare, "n=user,r=fyko+d2lbbFgONRv9qkxdawL");
        assert_eq!(m.username, "user");
        assert_eq!(m.nonce, "fyko+d2lbbFgONRv9qkxdawL");
    }

    #[test]
    fn saslname_escapes_are_decoded() {
        let m = parse_client_first("n,a=a=2Cb=3Dc,n=a=2Cb=3Dc,r=x").unwrap();
        assert_eq!(m.username, "a,b=c");
        assert!(parse_client_first("n,,n=a=2Xb,r=x").is_err());
    }

    #[test]
    fn unsupported_client_first_forms_are_rejected() {
        assert!(parse_client_first("p=tls-unique,,n=u,r=x").is_err());
        assert!(parse_client_first("n,,m=ext,n=u,r=x").is_err());
        assert!(parse_client_first("n,a=other,n=u,r=x").is_err());
        assert!(parse_client_first("n,,n=,r=x").is_err());
        assert!(parse_client_first("n,,n=u").is_err());
        assert!(parse_client_first("n,,n=u,r=a b").is_err());
    }

    #[test]
    fn client_final_keeps_the_part_before_the_proof() {
        let m = parse_client_final("c=biws,r=abc,p=cHJvb2Y=").unwrap();
        assert_eq!(m.without_proof, "c=biws,r=abc");
        assert_eq!(m.proof, "cHJvb2Y=");
        assert_eq!(m.nonce, "abc");
        assert!(parse_client_final("c=biws,r=abc").is_err());
    }
}
