//! The ACL file: ordered `allow|deny <who> <action> <filter>` rules, first
//! match wins, as an [`Authorizer`].

pub(crate) mod rule;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use roost_hooks::{AclResult, Action, Authorizer, ClientInfo, QoS};
use serde::Deserialize;

pub use rule::{FilterTemplate, Permission, Rule, RuleAction, Who};

use crate::FileError;
use crate::file::{read_for_reload, significant_lines};
use roost_hooks::topic::{
    covers, intersects, matches, strip_shared_prefix, validate_filter_syntax, validate_topic_name,
};

/// What the ACL answers when no rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoMatch {
    /// [`AclResult::Ignore`]: the next authorizer, or the broker's default policy, decides (default).
    #[default]
    Ignore,
    /// Allow.
    Allow,
    /// Deny.
    Deny,
}

/// `[auth.acl_file]` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclFileConfig {
    /// The rule file.
    pub path: PathBuf,
    /// `"ignore"` (default), `"allow"` or `"deny"` when no rule matches.
    #[serde(default)]
    pub no_match: NoMatch,
}

/// A loaded ACL file; reloadable while in use.
///
/// Decisions:
/// * PUBLISH to `$SYS` or `$SYS/...` is always denied: clients never write there.
/// * PUBLISH: the first rule for this client and action whose filter matches
///   the topic decides.
/// * SUBSCRIBE (a `$share/<group>/` prefix is ignored): an `allow` rule
///   decides only when its filter covers the whole requested filter; a `deny`
///   rule decides as soon as its filter overlaps the request, so a wide
///   subscription cannot reach a denied topic.
/// * SUBSCRIBE under per-message semantics ([`AclFile::check_per_message`],
///   the broker's `acl_wildcards = "per_message"`): a `deny` rule decides
///   only when its filter covers the whole requested filter, an `allow` rule
///   as soon as it overlaps it; every message the subscription brings is then
///   checked against the same rules with its topic name at delivery.
/// * A rule whose `%u`/`%c` value is missing or unsafe (contains `+`, `#`,
///   `/`, NUL, starts with `$`, or is empty) never allows, and a `deny` rule
///   in that case denies.
/// * No match: a subscription reaching into `$SYS` is denied; anything else
///   gets the [`NoMatch`] answer.
pub struct AclFile {
    path: PathBuf,
    rules: ArcSwap<Vec<Rule>>,
    no_match: NoMatch,
    /// Held by `reload` from read to store, so two reloads at once cannot
    /// leave the older file's rules in force.
    reloading: Mutex<()>,
}

impl fmt::Debug for AclFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AclFile")
            .field("path", &self.path)
            .field("rules", &self.rules.load().len())
            .field("no_match", &self.no_match)
            .finish()
    }
}

impl AclFile {
    /// Loads `path`; when no rule matches the answer is `Ignore`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, FileError> {
        let path = path.as_ref().to_path_buf();
        let rules = parse_file(&path)?;
        Ok(Self {
            path,
            rules: ArcSwap::from_pointee(rules),
            no_match: NoMatch::Ignore,
            reloading: Mutex::new(()),
        })
    }

    /// Loads the file a config names.
    pub fn from_config(config: &AclFileConfig) -> Result<Self, FileError> {
        Ok(Self::load(&config.path)?.with_no_match(config.no_match))
    }

    /// Builds an ACL from rule text (for embedding and tests); errors name `origin`.
    pub fn from_text(origin: &str, text: &str) -> Result<Self, FileError> {
        let path = PathBuf::from(origin);
        let rules = parse_text(&path, text)?;
        Ok(Self {
            path,
            rules: ArcSwap::from_pointee(rules),
            no_match: NoMatch::Ignore,
            reloading: Mutex::new(()),
        })
    }

    /// Sets the answer when no rule matches.
    pub fn with_no_match(mut self, no_match: NoMatch) -> Self {
        self.no_match = no_match;
        self
    }

    /// Re-reads the file. On error (including a zero-byte file, which is
    /// what a file being rewritten in place looks like) the previous rules
    /// stay in force and the error is returned for logging.
    pub fn reload(&self) -> Result<(), FileError> {
        let _one_at_a_time = self.reloading.lock();
        let text = read_for_reload(&self.path)?;
        let rules = parse_text(&self.path, &text)?;
        self.rules.store(Arc::new(rules));
        Ok(())
    }

    /// Number of rules in force.
    pub fn len(&self) -> usize {
        self.rules.load().len()
    }

    /// True when no rule is in force.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The decision for `client` doing `action` on `topic` (a topic name for
    /// PUBLISH, a topic filter for SUBSCRIBE).
    pub fn check(&self, client: &ClientInfo, action: Action, topic: &str) -> AclResult {
        let publish = matches!(action, Action::Publish { .. });
        let topic = if publish {
            if topic == "$SYS" || topic.starts_with("$SYS/") {
                return AclResult::Deny;
            }
            if validate_topic_name(topic).is_err() {
                return AclResult::Deny;
            }
            topic
        } else {
            let filter = strip_shared_prefix(topic);
            if validate_filter_syntax(filter).is_err() {
                return AclResult::Deny;
            }
            filter
        };
        // A filter without wildcards is one topic: covering, overlapping and
        // matching it are the same test, and `matches` allocates nothing
        // (this is the delivery-time check of per-message subscriptions).
        let literal = publish || !topic.contains(['+', '#']);
        let relation = if literal {
            Relation::Topic
        } else {
            Relation::WholeFilter
        };
        self.decide(client, publish, topic, relation)
    }

    /// The decision for `client` subscribing to `filter` under per-message
    /// semantics: `deny` rules decide only when they cover the whole filter,
    /// `allow` rules as soon as they overlap it. The broker then checks every
    /// message the subscription brings with [`AclFile::check`] on its topic.
    pub fn check_per_message(&self, client: &ClientInfo, filter: &str) -> AclResult {
        let filter = strip_shared_prefix(filter);
        if validate_filter_syntax(filter).is_err() {
            return AclResult::Deny;
        }
        let relation = if filter.contains(['+', '#']) {
            Relation::PerMessage
        } else {
            Relation::Topic
        };
        self.decide(client, false, filter, relation)
    }

    /// First matching rule wins; `topic` is already validated.
    fn decide(
        &self,
        client: &ClientInfo,
        publish: bool,
        topic: &str,
        relation: Relation,
    ) -> AclResult {
        let rules = self.rules.load();
        for rule in rules.iter() {
            if !rule.action.covers_publish(publish) || !rule.who.matches(client) {
                continue;
            }
            let Some(filter) = rule.filter.expand(client) else {
                match rule.permission {
                    Permission::Deny => return AclResult::Deny,
                    Permission::Allow => continue,
                }
            };
            let hit = match (relation, rule.permission) {
                (Relation::Topic, _) => matches(&filter, topic),
                (Relation::WholeFilter, Permission::Allow) => covers(&filter, topic),
                (Relation::WholeFilter, Permission::Deny) => intersects(&filter, topic),
                (Relation::PerMessage, Permission::Allow) => intersects(&filter, topic),
                (Relation::PerMessage, Permission::Deny) => covers(&filter, topic),
            };
            if hit {
                return match rule.permission {
                    Permission::Allow => AclResult::Allow,
                    Permission::Deny => AclResult::Deny,
                };
            }
        }
        if !publish {
            // Reading `$SYS` needs an explicit allow. Per message, only a
            // filter entirely inside `$SYS` is refused here: the topics a
            // wider one brings from `$SYS` are refused one by one at delivery.
            let into_sys = match relation {
                Relation::Topic => matches("$SYS/#", topic),
                Relation::WholeFilter => intersects("$SYS/#", topic),
                Relation::PerMessage => covers("$SYS/#", topic),
            };
            if into_sys {
                return AclResult::Deny;
            }
        }
        match self.no_match {
            NoMatch::Ignore => AclResult::Ignore,
            NoMatch::Allow => AclResult::Allow,
            NoMatch::Deny => AclResult::Deny,
        }
    }
}

/// How a rule's filter is compared with what is asked about.
#[derive(Debug, Clone, Copy)]
enum Relation {
    /// A topic name (PUBLISH, or a filter without wildcards): the rule matches it.
    Topic,
    /// A filter, whole-filter semantics: allow covers, deny overlaps.
    WholeFilter,
    /// A filter, per-message semantics: allow overlaps, deny covers.
    PerMessage,
}

impl Authorizer for AclFile {
    fn name(&self) -> &str {
        "acl_file"
    }

    fn authorize(&self, client: &ClientInfo, action: Action, topic: &str) -> AclResult {
        self.check(client, action, topic)
    }

    fn authorize_per_message(&self, client: &ClientInfo, _qos: QoS, filter: &str) -> AclResult {
        self.check_per_message(client, filter)
    }
}

fn parse_text(path: &Path, text: &str) -> Result<Vec<Rule>, FileError> {
    significant_lines(text)
        .map(|(line_no, line)| Rule::parse(line).map_err(|m| FileError::parse(path, line_no, m)))
        .collect()
}

fn parse_file(path: &Path) -> Result<Vec<Rule>, FileError> {
    let text = std::fs::read_to_string(path).map_err(|e| FileError::io(path, e))?;
    parse_text(path, &text)
}
