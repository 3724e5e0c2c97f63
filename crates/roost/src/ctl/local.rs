//! `roost ctl api-key` and `roost ctl admin`: edit the admin file
//! (`<data_dir>/admin.json`, or `[http] admin_file`) directly, like `emqx ctl
//! admins add`; a running server picks the change up by itself.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use roost_admin::store::AdminFile;
use roost_broker::config::Config;

#[derive(Debug, Subcommand)]
pub(crate) enum ApiKeyCmd {
    /// Create a key; prints the key and its secret once (only a hash is kept).
    Create {
        /// A label.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List the keys (never the secrets).
    List,
    /// Delete a key.
    Remove {
        /// The key (`rk_...`).
        key: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AdminCmd {
    /// Create or reset a dashboard user; the password is asked for twice on
    /// a terminal, or read from standard input.
    Create {
        /// User name.
        username: String,
        /// Read the password from standard input (one line), no prompt.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Print an argon2 hash for `[http] admin_password_hash`.
    Hash {
        /// Read the password from standard input (one line), no prompt.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove a dashboard user.
    Remove {
        /// User name.
        username: String,
    },
}

/// The admin file the server with these settings uses.
fn admin_file(config: Option<&Path>, data_dir: Option<&Path>) -> Result<PathBuf, String> {
    let config = Config::load(config, std::env::vars()).map_err(|e| e.to_string())?;
    let data_dir = data_dir.map_or_else(|| config.store.data_dir.clone(), Path::to_path_buf);
    Ok(config.http.effective_admin_file(&data_dir))
}

fn password(from_stdin: bool) -> Result<String, String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password: {e}"))?;
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            return Err("empty password on standard input".into());
        }
        return Ok(line);
    }
    crate::passwd::read_password()
}

pub(crate) fn api_key(
    cmd: &ApiKeyCmd,
    config: Option<&Path>,
    data_dir: Option<&Path>,
    json: bool,
) -> Result<(), String> {
    let path = admin_file(config, data_dir)?;
    let mut file = AdminFile::load(&path).map_err(|e| e.to_string())?;
    match cmd {
        ApiKeyCmd::Create { name } => {
            let (key, secret) = file.add_api_key(name);
            file.save(&path).map_err(|e| e.to_string())?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"key": key, "secret": secret, "file": path})
                );
            } else {
                println!("key:    {key}\nsecret: {secret}");
                eprintln!(
                    "stored hashed in {}; the secret is not shown again.\n\
                     use it as HTTP basic auth (curl -u {key}:SECRET) or ROOST_CTL_KEY={key}:SECRET",
                    path.display()
                );
            }
        }
        ApiKeyCmd::List => {
            let rows: Vec<serde_json::Value> = file
                .api_keys
                .iter()
                .map(|k| serde_json::json!({"key": k.key, "name": k.name, "created_at": k.created_at}))
                .collect();
            let value = serde_json::Value::Array(rows);
            if json {
                println!("{value}");
            } else {
                super::table::print(&value, &["key", "name", "created_at"]);
            }
        }
        ApiKeyCmd::Remove { key } => {
            if !file.remove_api_key(key) {
                return Err(format!("no API key {key} in {}", path.display()));
            }
            file.save(&path).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

pub(crate) fn admin(
    cmd: &AdminCmd,
    config: Option<&Path>,
    data_dir: Option<&Path>,
) -> Result<(), String> {
    match cmd {
        AdminCmd::Create {
            username,
            password_stdin,
        } => {
            let path = admin_file(config, data_dir)?;
            roost_admin::store::check_username(username).map_err(|e| e.to_string())?;
            let password = password(*password_stdin)?;
            let mut file = AdminFile::load(&path).map_err(|e| e.to_string())?;
            file.set_user(username, &password)
                .map_err(|e| e.to_string())?;
            file.save(&path).map_err(|e| e.to_string())?;
            eprintln!("{username}: dashboard user saved in {}", path.display());
        }
        AdminCmd::Hash { password_stdin } => {
            let password = password(*password_stdin)?;
            println!(
                "{}",
                roost_admin::store::hash_password(&password).map_err(|e| e.to_string())?
            );
        }
        AdminCmd::Remove { username } => {
            let path = admin_file(config, data_dir)?;
            let mut file = AdminFile::load(&path).map_err(|e| e.to_string())?;
            let before = file.users.len();
            file.users.retain(|u| &u.username != username);
            if before == file.users.len() {
                return Err(format!(
                    "no dashboard user {username} in {}",
                    path.display()
                ));
            }
            file.save(&path).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}
