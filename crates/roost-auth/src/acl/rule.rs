//! One ACL rule: `allow|deny <who> <action> <topic filter>`.

use std::borrow::Cow;
use std::net::IpAddr;

use ipnet::IpNet;
use roost_hooks::ClientInfo;

use roost_hooks::topic::validate_filter_syntax;

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// The rule grants.
    Allow,
    /// The rule forbids.
    Deny,
}

/// Which clients a rule is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// `user:<name>`: clients with this user name.
    User(String),
    /// `client:<id>`: the client with this identifier.
    Client(String),
    /// `ip:<CIDR>` (or a bare address): clients connecting from this network.
    Ip(IpNet),
    /// `all`: every client.
    All,
}

impl Who {
    /// Parses the `<who>` token.
    pub fn parse(token: &str) -> Result<Self, String> {
        if token == "all" {
            return Ok(Self::All);
        }
        let (kind, value) = token.split_once(':').ok_or_else(|| {
            format!("expected user:<name>, client:<id>, ip:<cidr> or all, got {token:?}")
        })?;
        if value.is_empty() {
            return Err(format!("empty value in {token:?}"));
        }
        match kind {
            "user" => Ok(Self::User(value.to_owned())),
            "client" => Ok(Self::Client(value.to_owned())),
            "ip" => parse_net(value).map(Self::Ip),
            _ => Err(format!(
                "unknown kind {kind:?} (expected user, client, ip or all)"
            )),
        }
    }

    /// True when `client` is one of the clients this names.
    pub fn matches(&self, client: &ClientInfo) -> bool {
        match self {
            Self::All => true,
            Self::User(name) => client.username.as_deref() == Some(name.as_str()),
            Self::Client(id) => &*client.client_id == id.as_str(),
            Self::Ip(net) => net.contains(&client.peer.ip().to_canonical()),
        }
    }
}

/// Parses `10.0.0.0/8`, `::1/128` or a bare address (a single host).
pub(crate) fn parse_net(text: &str) -> Result<IpNet, String> {
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    text.parse::<IpAddr>()
        .map(|ip| IpNet::from(ip.to_canonical()))
        .map_err(|_| format!("{text:?} is not an IP address or CIDR network"))
}

/// Which operations a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    /// PUBLISH.
    Publish,
    /// SUBSCRIBE.
    Subscribe,
    /// Both.
    All,
}

impl RuleAction {
    fn parse(token: &str) -> Result<Self, String> {
        match token {
            "publish" => Ok(Self::Publish),
            "subscribe" => Ok(Self::Subscribe),
            "all" => Ok(Self::All),
            _ => Err(format!(
                "unknown action {token:?} (expected publish, subscribe or all)"
            )),
        }
    }

    /// True when the rule applies to a publish (`true`) or a subscribe (`false`).
    pub fn covers_publish(self, publish: bool) -> bool {
        match self {
            Self::All => true,
            Self::Publish => publish,
            Self::Subscribe => !publish,
        }
    }
}

/// A topic filter that may contain `%u` (user name) and `%c` (client id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterTemplate {
    text: String,
    has_placeholders: bool,
}

impl FilterTemplate {
    /// Parses and validates a filter template.
    pub fn parse(text: &str) -> Result<Self, String> {
        let has_placeholders = text.contains("%u") || text.contains("%c");
        let probe = text.replace("%u", "u").replace("%c", "c");
        if validate_filter_syntax(&probe).is_err() {
            return Err(format!("{text:?} is not a valid topic filter"));
        }
        Ok(Self {
            text: text.to_owned(),
            has_placeholders,
        })
    }

    /// The filter with placeholders replaced for `client`, or `None` when a
    /// value could change the filter's shape: it is missing or empty, holds
    /// `+`, `#`, `/` or NUL, or starts with `$`. Such a client must not gain
    /// access through this rule.
    ///
    /// The text is scanned once: a value is never scanned again, so a user
    /// named `%c` does not turn into the client id it chose.
    pub fn expand<'a>(&'a self, client: &ClientInfo) -> Option<Cow<'a, str>> {
        if !self.has_placeholders {
            return Some(Cow::Borrowed(&self.text));
        }
        let user = if self.text.contains("%u") {
            safe_value(client.username.as_deref())?
        } else {
            ""
        };
        let id = if self.text.contains("%c") {
            safe_value(Some(&client.client_id))?
        } else {
            ""
        };
        Some(Cow::Owned(substitute(
            &self.text,
            &[("%u", user), ("%c", id)],
        )))
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// `template` with every occurrence of a pattern replaced by its value, in
/// one left-to-right pass: text that came from a value is never searched for
/// patterns again (a user name `%c` stays `%c`; the client id is not put in).
pub(crate) fn substitute(template: &str, replacements: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    'scan: while !rest.is_empty() {
        for (pattern, value) in replacements {
            if let Some(after) = rest.strip_prefix(pattern) {
                out.push_str(value);
                rest = after;
                continue 'scan;
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

/// The value when it is safe to put into a topic filter level (see [`FilterTemplate::expand`]).
pub(crate) fn safe_value(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty() && !v.starts_with('$') && !v.contains(['+', '#', '/', '\0']))
}

/// A parsed ACL line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Allow or deny.
    pub permission: Permission,
    /// Which clients.
    pub who: Who,
    /// Which operations.
    pub action: RuleAction,
    /// Which topics.
    pub filter: FilterTemplate,
}

impl Rule {
    /// Parses `allow|deny <who> <action> <topic filter>`; the filter is the
    /// rest of the line (it may contain spaces).
    pub fn parse(line: &str) -> Result<Self, String> {
        let (perm, rest) = next_token(line).ok_or("empty rule")?;
        let permission = match perm {
            "allow" => Permission::Allow,
            "deny" => Permission::Deny,
            _ => return Err(format!("expected allow or deny, got {perm:?}")),
        };
        let (who, rest) = next_token(rest).ok_or("missing <who> (user:, client:, ip: or all)")?;
        let who = Who::parse(who)?;
        let (action, rest) =
            next_token(rest).ok_or("missing action (publish, subscribe or all)")?;
        let action = RuleAction::parse(action)?;
        let filter = rest.trim();
        if filter.is_empty() {
            return Err("missing topic filter".into());
        }
        Ok(Self {
            permission,
            who,
            action,
            filter: FilterTemplate::parse(filter)?,
        })
    }
}

fn next_token(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start();
    if s.is_empty() {
        return None;
    }
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    Some((&s[..end], &s[end..]))
}
