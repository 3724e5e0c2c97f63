//! `roost ctl`: the management API from the command line, like `emqx ctl`
//! and `mosquitto_ctrl`. Remote commands call the HTTP API (endpoint and
//! key from flags, `ROOST_CTL_URL` / `ROOST_CTL_KEY`, or
//! `~/.config/roost/ctl.toml`); `api-key create`, `admin create` and
//! `openapi` work locally, on the admin file of the data directory, so the
//! first credentials can be made before anyone can log in.

mod client;
mod local;
mod table;

use std::process::ExitCode;

use clap::{Args, Subcommand};

/// `roost ctl` arguments.
#[derive(Debug, Args)]
pub(crate) struct CtlArgs {
    /// Base URL of the management API (default http://127.0.0.1:18083;
    /// env ROOST_CTL_URL; `url` in ~/.config/roost/ctl.toml).
    #[arg(long, global = true)]
    url: Option<String>,
    /// API key as `key:secret` (env ROOST_CTL_KEY; `key` in ctl.toml).
    #[arg(long, global = true)]
    key: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// The server's configuration file, for the local commands (where the
    /// admin file is); same as `roost -c FILE ctl ...`.
    #[arg(long = "config", global = true)]
    config: Option<std::path::PathBuf>,
    /// The server's data directory, for the local commands (default
    /// `./roost-data`, or `[store] data_dir`).
    #[arg(long = "data-dir", global = true)]
    data_dir: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: CtlCommand,
}

#[derive(Debug, Subcommand)]
enum CtlCommand {
    /// Node, version, uptime and the main counters.
    Status {
        /// Cluster: another node's counters, or `all` for the cluster's
        /// (each node's summed; default: the node asked).
        #[arg(long)]
        node: Option<String>,
    },
    /// The nodes (every node of a cluster).
    Nodes,
    /// Connected and parked clients.
    #[command(subcommand)]
    Clients(ClientsCmd),
    /// Subscriptions.
    #[command(subcommand)]
    Subs(SubsCmd),
    /// Retained messages.
    #[command(subcommand)]
    Retained(RetainedCmd),
    /// Publish a message from the broker.
    Publish {
        /// Topic name.
        topic: String,
        /// Payload (text; with --base64, base64 of the bytes).
        payload: String,
        /// QoS 0, 1 or 2.
        #[arg(short, long, default_value_t = 0)]
        qos: u8,
        /// Retain it.
        #[arg(short, long)]
        retain: bool,
        /// The payload is base64.
        #[arg(long)]
        base64: bool,
    },
    /// The ban list (`[auth.banned]`).
    #[command(subcommand)]
    Ban(BanCmd),
    /// Users of the password file (`[auth.password_file]`).
    #[command(subcommand)]
    Users(UsersCmd),
    /// Reload the auth, ACL and TLS files (as SIGHUP does).
    Reload,
    /// Print the Prometheus metrics.
    Metrics,
    /// API keys (local: edits the admin file).
    #[command(subcommand, name = "api-key")]
    ApiKey(local::ApiKeyCmd),
    /// Dashboard users (local: edits the admin file).
    #[command(subcommand)]
    Admin(local::AdminCmd),
    /// Print the OpenAPI document of this build (docs/openapi.json).
    Openapi,
}

#[derive(Debug, Subcommand)]
enum ClientsCmd {
    /// List clients.
    List {
        /// Only client ids containing this.
        #[arg(long)]
        like: Option<String>,
        /// Only this user name.
        #[arg(long)]
        username: Option<String>,
        /// Cluster: only this node's clients (`all`: every node, the default).
        #[arg(long)]
        node: Option<String>,
        /// Page (from 1).
        #[arg(long, default_value_t = 1)]
        page: u32,
        /// Rows per page (at most 1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// One client with its subscriptions.
    Show {
        /// Client id.
        client_id: String,
    },
    /// Disconnect a client (DISCONNECT 0x98 for MQTT 5.0).
    Kick {
        /// Client id.
        client_id: String,
    },
}

#[derive(Debug, Subcommand)]
enum SubsCmd {
    /// List subscriptions.
    List {
        /// Only this client's.
        #[arg(long)]
        client_id: Option<String>,
        /// Only this exact filter.
        #[arg(long)]
        filter: Option<String>,
        /// Cluster: only this node's subscriptions (`all`: every node, the default).
        #[arg(long)]
        node: Option<String>,
        /// Page (from 1).
        #[arg(long, default_value_t = 1)]
        page: u32,
        /// Rows per page (at most 1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Subscribe a client (connected or parked) to a filter, as if it had
    /// sent SUBSCRIBE (it gets no SUBACK).
    Add {
        /// Client id.
        client_id: String,
        /// Topic filter (`$share/<group>/...` for a shared subscription).
        filter: String,
        /// Maximum QoS 0, 1 or 2.
        #[arg(short, long, default_value_t = 0)]
        qos: u8,
        /// No Local.
        #[arg(long)]
        no_local: bool,
        /// Retain As Published.
        #[arg(long)]
        retain_as_published: bool,
        /// Retain Handling: 0 retained messages now, 1 only if new, 2 never.
        #[arg(long, default_value_t = 0)]
        retain_handling: u8,
    },
    /// Unsubscribe a client from a filter.
    Remove {
        /// Client id.
        client_id: String,
        /// Topic filter as subscribed.
        filter: String,
    },
}

#[derive(Debug, Subcommand)]
enum RetainedCmd {
    /// List retained messages matching a filter.
    List {
        /// Topic filter (default `#`).
        #[arg(long, default_value = "#")]
        filter: String,
        /// Page (from 1).
        #[arg(long, default_value_t = 1)]
        page: u32,
        /// Rows per page (at most 1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Show one retained message.
    Get {
        /// Topic.
        topic: String,
    },
    /// Delete one retained message.
    Delete {
        /// Topic.
        topic: String,
    },
}

#[derive(Debug, Subcommand)]
enum BanCmd {
    /// Ban a client id, user name or address (closes its connections).
    Add {
        /// `clientid`, `username` or `peerhost`.
        kind: String,
        /// The id, name, or address / CIDR network.
        value: String,
        /// End of the ban, Unix seconds (default: never).
        #[arg(long)]
        until: Option<u64>,
    },
    /// List the bans.
    List,
    /// Lift a ban.
    Remove {
        /// `clientid`, `username` or `peerhost`.
        kind: String,
        /// The id, name, or address.
        value: String,
    },
}

#[derive(Debug, Subcommand)]
enum UsersCmd {
    /// List the users.
    List,
    /// Add a user (the password is asked for, or read from standard input).
    Add {
        /// User name.
        username: String,
    },
    /// Change a user's password.
    Passwd {
        /// User name.
        username: String,
    },
    /// Remove a user.
    Remove {
        /// User name.
        username: String,
    },
}

/// Runs `roost ctl`; `config` and `data_dir` are the server's `-c` and
/// `--data-dir`, for the local commands.
pub(crate) fn run(
    args: &CtlArgs,
    config: Option<&std::path::Path>,
    data_dir: Option<&std::path::Path>,
) -> ExitCode {
    let config = args.config.as_deref().or(config);
    let data_dir = args.data_dir.as_deref().or(data_dir);
    let result = match &args.command {
        CtlCommand::ApiKey(cmd) => local::api_key(cmd, config, data_dir, args.json),
        CtlCommand::Admin(cmd) => local::admin(cmd, config, data_dir),
        CtlCommand::Openapi => {
            print!("{}", roost_admin::openapi::document());
            Ok(())
        }
        remote => client::Client::new(args.url.as_deref(), args.key.as_deref())
            .and_then(|c| remote_command(&c, remote, args.json)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roost ctl: {e}");
            ExitCode::FAILURE
        }
    }
}

fn enc(s: &str) -> String {
    client::encode_component(s)
}

fn remote_command(c: &client::Client, command: &CtlCommand, json: bool) -> Result<(), String> {
    use serde_json::json;
    match command {
        CtlCommand::Status { node } => {
            // Another node's counters, or the cluster's: shown under that
            // name, without the answering node's version and uptime.
            let (mut status, stats) = match node {
                None => (c.get("/api/v1/status")?, c.get("/api/v1/stats")?),
                Some(node) => {
                    let stats = c.get(&format!("/api/v1/stats?node={}", enc(node)))?;
                    let mut status = json!({ "node": node });
                    if let Some(nodes) = stats["nodes"].as_array() {
                        status["nodes_counted"] = nodes.len().into();
                    }
                    warn_failed_nodes(&json!({"meta": {"failed_nodes": stats["failed_nodes"]}}));
                    (status, stats)
                }
            };
            if let (Some(s), Some(t)) = (status.as_object_mut(), stats.as_object()) {
                for key in [
                    "connections_current",
                    "sessions",
                    "subscriptions",
                    "retained_messages",
                    "messages_received",
                    "messages_delivered",
                    "messages_dropped",
                ] {
                    if let Some(v) = t.get(key) {
                        s.insert(key.to_string(), v.clone());
                    }
                }
            }
            show(status, &[], json);
        }
        CtlCommand::Nodes => {
            let value = c.get("/api/v1/nodes")?;
            show(
                value,
                &[
                    "node",
                    "local",
                    "status",
                    "version",
                    "uptime_s",
                    "connections",
                    "sessions",
                    "admin_url",
                ],
                json,
            );
        }
        CtlCommand::Clients(cmd) => clients_command(c, cmd, json)?,
        CtlCommand::Subs(cmd) => subs_command(c, cmd, json)?,
        CtlCommand::Retained(cmd) => retained_command(c, cmd, json)?,
        CtlCommand::Publish {
            topic,
            payload,
            qos,
            retain,
            base64,
        } => {
            let body = json!({
                "topic": topic, "payload": payload, "qos": qos, "retain": retain,
                "encoding": if *base64 { "base64" } else { "plain" },
            });
            let value = c.post("/api/v1/publish", &body)?;
            show(value, &[], json);
        }
        CtlCommand::Ban(cmd) => ban_command(c, cmd, json)?,
        CtlCommand::Users(cmd) => users_command(c, cmd, json)?,
        CtlCommand::Reload => {
            let value = c.post("/api/v1/reload", &json!({}))?;
            show(value, &[], json);
        }
        CtlCommand::Metrics => print!("{}", c.text("/metrics")?),
        CtlCommand::ApiKey(_) | CtlCommand::Admin(_) | CtlCommand::Openapi => {}
    }
    Ok(())
}

/// Prints an answer: a table of `columns` (all when empty), or JSON with `--json`.
fn show(value: serde_json::Value, columns: &[&str], json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else {
        table::print(&value, columns);
    }
}

/// A cluster-wide list names the nodes that did not answer
/// (`meta.failed_nodes`): said on stderr, so a table is never silently short.
fn warn_failed_nodes(value: &serde_json::Value) {
    let Some(failed) = value["meta"]["failed_nodes"].as_array() else {
        return;
    };
    for f in failed {
        eprintln!(
            "warning: node {} did not answer: {}",
            f["node"].as_str().unwrap_or("?"),
            f["error"].as_str().unwrap_or("")
        );
    }
}

/// `roost ctl clients list|show|kick`.
fn clients_command(c: &client::Client, command: &ClientsCmd, json: bool) -> Result<(), String> {
    let show = |value: serde_json::Value, columns: &[&str]| show(value, columns, json);
    match command {
        ClientsCmd::List {
            like,
            username,
            node,
            page,
            limit,
        } => {
            let mut query = format!("?page={page}&limit={limit}");
            if let Some(node) = node {
                query.push_str(&format!("&node={}", enc(node)));
            }
            if let Some(like) = like {
                query.push_str(&format!("&like={}", enc(like)));
            }
            if let Some(user) = username {
                query.push_str(&format!("&username={}", enc(user)));
            }
            let value = c.get(&format!("/api/v1/clients{query}"))?;
            warn_failed_nodes(&value);
            show(
                value,
                &[
                    "node",
                    "client_id",
                    "username",
                    "connected",
                    "protocol",
                    "peer",
                    "subscriptions",
                    "queued",
                    "inflight",
                ],
            );
        }
        ClientsCmd::Show { client_id } => {
            let mut value = c.get(&format!("/api/v1/clients/{}", enc(client_id)))?;
            let subs = c.get(&format!("/api/v1/clients/{}/subscriptions", enc(client_id)))?;
            if json {
                if let Some(map) = value.as_object_mut() {
                    map.insert("subscription_list".into(), subs);
                }
                show(value, &[]);
            } else {
                table::print(&value, &[]);
                println!();
                table::print(
                    &subs,
                    &[
                        "filter",
                        "qos",
                        "no_local",
                        "retain_as_published",
                        "retain_handling",
                    ],
                );
            }
        }
        ClientsCmd::Kick { client_id } => {
            c.delete(&format!("/api/v1/clients/{}", enc(client_id)))?;
            if !json {
                println!("{client_id}: disconnected");
            }
        }
    }
    Ok(())
}

/// `roost ctl subs list|add|remove`.
fn subs_command(c: &client::Client, command: &SubsCmd, json: bool) -> Result<(), String> {
    let show = |value: serde_json::Value, columns: &[&str]| show(value, columns, json);
    match command {
        SubsCmd::List {
            client_id,
            filter,
            node,
            page,
            limit,
        } => {
            let mut query = format!("?page={page}&limit={limit}");
            if let Some(node) = node {
                query.push_str(&format!("&node={}", enc(node)));
            }
            if let Some(id) = client_id {
                query.push_str(&format!("&client_id={}", enc(id)));
            }
            if let Some(f) = filter {
                query.push_str(&format!("&filter={}", enc(f)));
            }
            let value = c.get(&format!("/api/v1/subscriptions{query}"))?;
            warn_failed_nodes(&value);
            show(
                value,
                &[
                    "node",
                    "client_id",
                    "filter",
                    "qos",
                    "no_local",
                    "retain_as_published",
                    "retain_handling",
                ],
            );
        }
        SubsCmd::Add {
            client_id,
            filter,
            qos,
            no_local,
            retain_as_published,
            retain_handling,
        } => {
            let body = serde_json::json!({
                "filter": filter, "qos": qos, "no_local": no_local,
                "retain_as_published": retain_as_published, "retain_handling": retain_handling,
            });
            let path = format!("/api/v1/clients/{}/subscriptions", enc(client_id));
            let value = c.post(&path, &body)?;
            show(value, &["qos", "existed", "retained"]);
        }
        SubsCmd::Remove { client_id, filter } => {
            c.delete(&format!(
                "/api/v1/clients/{}/subscriptions?filter={}",
                enc(client_id),
                enc(filter)
            ))?;
            if !json {
                println!("{client_id}: unsubscribed from {filter}");
            }
        }
    }
    Ok(())
}

/// `roost ctl retained list|get|delete`.
fn retained_command(c: &client::Client, command: &RetainedCmd, json: bool) -> Result<(), String> {
    let show = |value: serde_json::Value, columns: &[&str]| show(value, columns, json);
    match command {
        RetainedCmd::List {
            filter,
            page,
            limit,
        } => {
            let value = c.get(&format!(
                "/api/v1/retained?filter={}&page={page}&limit={limit}",
                enc(filter)
            ))?;
            show(value, &["topic", "qos", "payload_size", "payload"]);
        }
        RetainedCmd::Get { topic } => {
            let value = c.get(&format!("/api/v1/retained/{}", enc(topic)))?;
            show(value, &[]);
        }
        RetainedCmd::Delete { topic } => {
            c.delete(&format!("/api/v1/retained/{}", enc(topic)))?;
            if !json {
                println!("{topic}: deleted");
            }
        }
    }
    Ok(())
}

/// `roost ctl ban add|list|remove`.
fn ban_command(c: &client::Client, command: &BanCmd, json: bool) -> Result<(), String> {
    use serde_json::json;
    let show = |value: serde_json::Value, columns: &[&str]| show(value, columns, json);
    match command {
        BanCmd::Add { kind, value, until } => {
            let mut body = json!({"kind": kind, "value": value});
            if let Some(until) = until {
                body["until"] = json!(until);
            }
            let answer = c.post("/api/v1/banned", &body)?;
            show(answer, &[]);
        }
        BanCmd::List => {
            let value = c.get("/api/v1/banned")?;
            show(value, &["kind", "value", "until"]);
        }
        BanCmd::Remove { kind, value } => {
            c.delete(&format!("/api/v1/banned/{}/{}", enc(kind), enc(value)))?;
            if !json {
                println!("{kind} {value}: ban lifted");
            }
        }
    }
    Ok(())
}

/// `roost ctl users list|add|passwd|remove` (the password file's users).
fn users_command(c: &client::Client, command: &UsersCmd, json: bool) -> Result<(), String> {
    use serde_json::json;
    let show = |value: serde_json::Value, columns: &[&str]| show(value, columns, json);
    match command {
        UsersCmd::List => {
            let value = c.get("/api/v1/users")?;
            show(value, &["username"]);
        }
        UsersCmd::Add { username } => {
            let password = crate::passwd::read_password()?;
            let value = c.post(
                "/api/v1/users",
                &json!({"username": username, "password": password}),
            )?;
            show(value, &[]);
        }
        UsersCmd::Passwd { username } => {
            let password = crate::passwd::read_password()?;
            c.put(
                &format!("/api/v1/users/{}", enc(username)),
                &json!({"password": password}),
            )?;
            if !json {
                println!("{username}: password changed");
            }
        }
        UsersCmd::Remove { username } => {
            c.delete(&format!("/api/v1/users/{}", enc(username)))?;
            if !json {
                println!("{username}: removed");
            }
        }
    }
    Ok(())
}
