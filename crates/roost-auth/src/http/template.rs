//! `${name}` templates for HTTP request parameters.

use roost_hooks::{Action, ClientInfo};

/// A value a template can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Var {
    ClientId,
    Username,
    Password,
    PeerHost,
    PeerPort,
    Protocol,
    Topic,
    Action,
    Qos,
    Retain,
}

impl Var {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "clientid" => Self::ClientId,
            "username" => Self::Username,
            "password" => Self::Password,
            "peerhost" => Self::PeerHost,
            "peerport" => Self::PeerPort,
            "proto_ver" => Self::Protocol,
            "topic" => Self::Topic,
            "action" => Self::Action,
            "qos" => Self::Qos,
            "retain" => Self::Retain,
            _ => return None,
        })
    }

    /// Variables that only exist when authorizing.
    fn authz_only(self) -> bool {
        matches!(self, Self::Topic | Self::Action | Self::Qos | Self::Retain)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(Var),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

/// The values a request is rendered from.
pub(crate) struct Vars<'a> {
    pub(crate) client: &'a ClientInfo,
    pub(crate) password: Option<&'a [u8]>,
    pub(crate) action: Option<(Action, &'a str)>,
}

impl Template {
    /// Parses `text`; `authz` allows the topic/action variables.
    pub(crate) fn parse(text: &str, authz: bool) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {text:?}"))?;
            let name = &after[..end];
            let var = Var::parse(name).ok_or_else(|| format!("unknown placeholder ${{{name}}}"))?;
            if var.authz_only() && !authz {
                return Err(format!("${{{name}}} is only available for authorization"));
            }
            parts.push(Part::Var(var));
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    /// Renders with `vars`; absent values are empty.
    pub(crate) fn render(&self, vars: &Vars<'_>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) => push_var(&mut out, *v, vars),
            }
        }
        out
    }
}

fn push_var(out: &mut String, var: Var, vars: &Vars<'_>) {
    let client = vars.client;
    match var {
        Var::ClientId => out.push_str(&client.client_id),
        Var::Username => out.push_str(client.username.as_deref().unwrap_or("")),
        Var::Password => out.push_str(&String::from_utf8_lossy(vars.password.unwrap_or_default())),
        Var::PeerHost => out.push_str(&client.peer.ip().to_canonical().to_string()),
        Var::PeerPort => out.push_str(&client.peer.port().to_string()),
        Var::Protocol => out.push_str(match client.protocol {
            roost_hooks::ProtocolVersion::V31 => "3",
            roost_hooks::ProtocolVersion::V311 => "4",
            roost_hooks::ProtocolVersion::V5 => "5",
        }),
        Var::Topic => out.push_str(vars.action.map(|(_, t)| t).unwrap_or("")),
        Var::Action => out.push_str(match vars.action {
            Some((Action::Publish { .. }, _)) => "publish",
            Some((Action::Subscribe { .. }, _)) => "subscribe",
            None => "",
        }),
        Var::Qos => {
            if let Some((Action::Publish { qos, .. } | Action::Subscribe { qos }, _)) = vars.action
            {
                out.push_str(&(qos as u8).to_string());
            }
        }
        Var::Retain => {
            if let Some((Action::Publish { retain, .. }, _)) = vars.action {
                out.push_str(if retain { "true" } else { "false" });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_checked_at_parse_time() {
        assert!(Template::parse("${clientid}-${username}", false).is_ok());
        assert!(Template::parse("${topic}", false).is_err());
        assert!(Template::parse("${topic}", true).is_ok());
        assert!(Template::parse("${nope}", true).is_err());
        assert!(Template::parse("${clientid", true).is_err());
    }
}
