//! `roost passwd`: edits a Mosquitto password file with `mosquitto_passwd`'s
//! command line, so the commands a Mosquitto user already types work:
//!
//! ```text
//! roost passwd [-H sha512-pbkdf2|sha512|argon2id] [-c | -D] FILE USER   (asks for the password)
//! roost passwd [-H ...] [-c] -b FILE USER PASSWORD
//! roost passwd -U FILE                                                 (hash a plain-text file)
//! ```
//!
//! As in `mosquitto_passwd`: the file must exist unless `-c` (which
//! overwrites it), `-D` of a user who is not there fails, and the password
//! is read twice without echo on a terminal.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use roost_auth::password::{HashKind, PasswordHash, delete_user, set_password};

/// `roost passwd`'s arguments (mosquitto_passwd's).
#[derive(Debug, Args)]
#[command(override_usage = "roost passwd [-H HASH] [-c | -D] FILE USER\n       \
                      roost passwd [-H HASH] [-c] -b FILE USER PASSWORD\n       \
                      roost passwd -U FILE")]
pub(crate) struct PasswdArgs {
    /// Run in batch mode: the password is the third argument.
    #[arg(short = 'b')]
    batch: bool,
    /// Create a new password file, overwriting an existing one.
    #[arg(short = 'c', conflicts_with_all = ["delete", "upgrade"])]
    create: bool,
    /// Delete the user instead of setting its password (fails when absent).
    #[arg(short = 'D', long = "delete", conflicts_with_all = ["batch", "upgrade"])]
    delete: bool,
    /// Hash the plain-text passwords of a `user:password` file in place.
    #[arg(short = 'U', conflicts_with_all = ["batch", "hash"])]
    upgrade: bool,
    /// Hash algorithm of new entries.
    #[arg(short = 'H', value_enum)]
    hash: Option<HashArg>,
    /// Same as `-H argon2id` (kept from earlier versions of roost passwd).
    #[arg(long = "argon2", hide = true)]
    argon2: bool,
    /// FILE USER [PASSWORD] (PASSWORD only with -b); FILE alone with -U.
    #[arg(value_name = "FILE USER [PASSWORD]", num_args = 1..=3, required = true)]
    args: Vec<String>,
}

/// `-H`: the hash of new entries.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum HashArg {
    /// `$7$`: PBKDF2-SHA512, 101 rounds (Mosquitto 2's default).
    #[value(name = "sha512-pbkdf2")]
    Sha512Pbkdf2,
    /// `$6$`: one SHA-512 round (Mosquitto 1.6 and earlier). Weak.
    Sha512,
    /// `$argon2id$` (Mosquitto 2.1 built with libargon2).
    Argon2id,
}

/// Runs `roost passwd`; the exit code follows mosquitto_passwd's (1 on error).
pub(crate) fn run(args: &PasswdArgs) -> ExitCode {
    match execute(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("roost passwd: {message}");
            ExitCode::FAILURE
        }
    }
}

fn execute(args: &PasswdArgs) -> Result<(), String> {
    let kind = match (args.hash, args.argon2) {
        (Some(HashArg::Argon2id), _) | (None, true) => HashKind::Argon2id,
        (Some(HashArg::Sha512), _) => HashKind::Sha512,
        (Some(HashArg::Sha512Pbkdf2), _) | (None, false) => HashKind::Pbkdf2Sha512,
    };
    if args.upgrade {
        let [file] = args.args.as_slice() else {
            return Err("-U takes the password file only: roost passwd -U FILE".into());
        };
        return upgrade(Path::new(file), kind);
    }
    let (file, user, password) = match (args.batch, args.args.as_slice()) {
        (true, [file, user, password]) => (file, user, Some(password.clone())),
        (true, _) => {
            return Err("-b needs FILE USER PASSWORD (mosquitto_passwd's order)".into());
        }
        (false, [file, user]) => (file, user, None),
        (false, [_, _, _]) => {
            return Err(
                "a password on the command line needs -b: roost passwd -b FILE USER PASSWORD"
                    .into(),
            );
        }
        (false, _) => return Err("give FILE USER (see roost passwd --help)".into()),
    };
    let file = PathBuf::from(file);
    if args.delete {
        return match delete_user(&file, user) {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!("user {user} not found in {}", file.display())),
            Err(e) => Err(e.to_string()),
        };
    }
    if !args.create && !file.exists() {
        return Err(format!(
            "{} does not exist (-c creates a new password file)",
            file.display()
        ));
    }
    let password = match password {
        Some(password) => password,
        None => read_password()?,
    };
    if args.create {
        // -c starts a new file, as mosquitto_passwd does.
        std::fs::write(&file, "").map_err(|e| format!("{}: {e}", file.display()))?;
    }
    set_password(&file, user, &password, kind).map_err(|e| e.to_string())
}

/// Reads the password: twice without echo on a terminal (they must match);
/// from standard input otherwise, where a second line, if any, must match too
/// (`printf 'pw\npw\n' | roost passwd ...` as with mosquitto_passwd).
pub(crate) fn read_password() -> Result<String, String> {
    let stdin = std::io::stdin();
    let (first, second) = if stdin.is_terminal() {
        let first = prompt_hidden("Password: ")?;
        let second = prompt_hidden("Reenter password: ")?;
        (first, Some(second))
    } else {
        let mut lines = stdin.lock().lines();
        let first = lines
            .next()
            .transpose()
            .map_err(|e| format!("cannot read the password: {e}"))?
            .ok_or("no password on standard input (or use -b FILE USER PASSWORD)")?;
        let second = lines.next().transpose().ok().flatten();
        (first, second)
    };
    if first.is_empty() {
        return Err("empty password".into());
    }
    if second.is_some_and(|second| second != first) {
        return Err("passwords do not match".into());
    }
    Ok(first)
}

/// Asks on the terminal with echo off, restoring the terminal afterwards.
fn prompt_hidden(prompt: &str) -> Result<String, String> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    use std::os::fd::AsFd;
    let stdin = std::io::stdin();
    let fd = stdin.as_fd();
    let saved = tcgetattr(fd).map_err(|e| format!("cannot read the terminal settings: {e}"))?;
    let mut silent = saved.clone();
    silent.local_modes.remove(LocalModes::ECHO);
    silent.local_modes.insert(LocalModes::ECHONL);
    // Echo off before the prompt: whatever is typed once the prompt shows
    // is never echoed.
    tcsetattr(fd, OptionalActions::Flush, &silent)
        .map_err(|e| format!("cannot turn off the echo: {e}"))?;
    let mut stderr = std::io::stderr();
    let _ = write!(stderr, "{prompt}");
    let _ = stderr.flush();
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    let _ = tcsetattr(fd, OptionalActions::Flush, &saved);
    read.map_err(|e| format!("cannot read the password: {e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// `-U`: hashes every entry whose password is not a hash yet; comments and
/// hashed entries stay as they are. The file is replaced atomically.
fn upgrade(file: &Path, kind: HashKind) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut out = String::with_capacity(text.len() * 2);
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        let entry = (!trimmed.is_empty() && !trimmed.starts_with('#'))
            .then(|| trimmed.split_once(':'))
            .flatten();
        match entry {
            Some((user, password)) if PasswordHash::parse(password).is_err() => {
                let hash = PasswordHash::create(password.as_bytes(), kind)
                    .map_err(|e| format!("{}:{}: {e}", file.display(), number + 1))?;
                out.push_str(&format!("{user}:{}\n", hash.encode()));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    let tmp = file.with_extension("roost-tmp");
    let write = || -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(out.as_bytes())?;
        f.sync_all()
    };
    write().map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, file).map_err(|e| format!("{}: {e}", file.display()))
}
