//! `roost passwd` against the real `mosquitto_passwd` (Debian `mosquitto`,
//! installed by scripts/install-test-deps.sh): the same command lines give
//! the same exit status and the same users, each tool's hashes verify with
//! the other's passwords, and the real `mosquitto` accepts Roost's file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use roost_auth::password::PasswordFile;
use roost_testkit::packets::unique_id;

const ROOST: &str = env!("CARGO_BIN_EXE_roost");

/// A directory of its own, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(unique_id("roost-passwd"));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mosquitto_passwd() -> &'static str {
    assert!(
        Command::new("mosquitto_passwd")
            .arg("-h")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok(),
        "mosquitto_passwd is missing: scripts/install-test-deps.sh installs Debian's `mosquitto`"
    );
    "mosquitto_passwd"
}

/// Runs `tool` (`roost passwd` or `mosquitto_passwd`) with `args`, `{}` in an
/// argument standing for `file`, and `stdin` as its standard input.
fn run(tool: &str, args: &[&str], file: &Path, stdin: &str) -> bool {
    let file = file.to_str().unwrap();
    let args: Vec<String> = args.iter().map(|a| a.replace("{}", file)).collect();
    let mut command = if tool == "roost" {
        let mut c = Command::new(ROOST);
        c.arg("passwd");
        c
    } else {
        Command::new(tool)
    };
    let mut child = command
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap().status.success()
}

/// The user names of a password file, in order, with their hash scheme.
fn users(file: &Path) -> Vec<(String, String)> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return Vec::new();
    };
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (user, hash) = l.split_once(':').unwrap();
            let scheme = hash.split('$').nth(1).unwrap_or("plain").to_string();
            (user.to_string(), scheme)
        })
        .collect()
}

/// Runs the same steps through both tools in two files; after each step the
/// exit status and the users must agree.
fn same_steps(steps: &[(&[&str], &str)], initial: Option<&str>) -> (TempDir, PathBuf, PathBuf) {
    let mosquitto = mosquitto_passwd();
    let dir = TempDir::new();
    let ours = dir.0.join("roost.passwd");
    let theirs = dir.0.join("mosquitto.passwd");
    if let Some(initial) = initial {
        std::fs::write(&ours, initial).unwrap();
        std::fs::write(&theirs, initial).unwrap();
    }
    for (args, stdin) in steps {
        let ok_ours = run("roost", args, &ours, stdin);
        let ok_theirs = run(mosquitto, args, &theirs, stdin);
        assert_eq!(
            ok_ours, ok_theirs,
            "exit status of {args:?}: roost passwd {ok_ours}, mosquitto_passwd {ok_theirs}"
        );
        assert_eq!(users(&ours), users(&theirs), "users after {args:?}");
    }
    (dir, ours, theirs)
}

fn check(file: &Path, user: &str, password: &str) -> bool {
    PasswordFile::load(file)
        .unwrap()
        .check(user, password.as_bytes())
}

#[test]
fn batch_mode_create_add_update_delete_agree_with_mosquitto_passwd() {
    let steps: &[(&[&str], &str)] = &[
        // The file must exist without -c.
        (&["-b", "{}", "alice", "apw"], ""),
        (&["-c", "-b", "{}", "alice", "apw"], ""),
        (&["-b", "{}", "bob", "bpw"], ""),
        (&["-b", "{}", "carol", "carolpw"], ""),
        (&["-b", "{}", "alice", "apw2"], ""),
        (&["-H", "sha512", "-b", "{}", "dave", "dpw"], ""),
        (&["-D", "{}", "bob"], ""),
        // Deleting a user who is not there fails.
        (&["-D", "{}", "nobody"], ""),
    ];
    let (_dir, ours, theirs) = same_steps(steps, None);
    assert_eq!(
        users(&ours),
        [
            ("alice".into(), "7".into()),
            ("carol".into(), "7".into()),
            ("dave".into(), "6".into())
        ]
    );
    for file in [&ours, &theirs] {
        assert!(check(file, "alice", "apw2"), "{}", file.display());
        assert!(!check(file, "alice", "apw"), "{}", file.display());
        assert!(check(file, "carol", "carolpw"), "{}", file.display());
        assert!(check(file, "dave", "dpw"), "{}", file.display());
    }
    // `-b passwd carol carolpw` no longer writes a file named `carol`.
    assert!(!ours.with_file_name("carol").exists());
}

#[test]
fn password_from_standard_input_twice_must_match_as_in_mosquitto_passwd() {
    let steps: &[(&[&str], &str)] = &[
        (&["-c", "{}", "erin"], "epw\nepw\n"),
        (&["{}", "frank"], "fpw\nother\n"),
        (&["{}", "frank"], "fpw\nfpw\n"),
    ];
    let (_dir, ours, _) = same_steps(steps, None);
    assert!(check(&ours, "erin", "epw"));
    assert!(check(&ours, "frank", "fpw"));
}

#[test]
fn upgrade_hashes_a_plain_text_file_as_mosquitto_passwd_does() {
    let steps: &[(&[&str], &str)] = &[(&["-U", "{}"], "")];
    let (_dir, ours, theirs) = same_steps(steps, Some("gina:gpw\nhank:hpw\n"));
    for file in [&ours, &theirs] {
        assert!(check(file, "gina", "gpw"), "{}", file.display());
        assert!(check(file, "hank", "hpw"), "{}", file.display());
    }
    assert_eq!(
        users(&ours),
        [("gina".into(), "7".into()), ("hank".into(), "7".into())]
    );
}

/// A free TCP port on loopback (released again for mosquitto to take).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the process on drop.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mosquitto_pub(port: u16, user: &str, password: &str) -> bool {
    Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
        .args(["-t", "roost/passwd", "-m", "x", "-u", user, "-P", password])
        .args(["-i", &unique_id("passwd-pub")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

#[test]
fn the_real_mosquitto_accepts_a_file_written_by_roost_passwd() {
    let dir = TempDir::new();
    let file = dir.0.join("passwd");
    assert!(run("roost", &["-c", "-b", "{}", "ivy", "ivypw"], &file, ""));
    assert!(run(
        "roost",
        &["-H", "sha512", "-b", "{}", "jack", "jackpw"],
        &file,
        ""
    ));
    let port = free_port();
    let conf = dir.0.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "user root\nlistener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\n",
            file.display()
        ),
    )
    .unwrap();
    let mosquitto = ["/usr/sbin/mosquitto", "mosquitto"]
        .into_iter()
        .find(|m| Path::new(m).exists())
        .unwrap_or("mosquitto");
    let _broker = Killed(
        Command::new(mosquitto)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto is missing: scripts/install-test-deps.sh installs it"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).is_err() {
        assert!(Instant::now() < deadline, "mosquitto did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(mosquitto_pub(port, "ivy", "ivypw"), "$7$ entry refused");
    assert!(mosquitto_pub(port, "jack", "jackpw"), "$6$ entry refused");
    assert!(
        !mosquitto_pub(port, "ivy", "wrong"),
        "wrong password accepted"
    );
}

#[test]
fn on_a_terminal_the_password_is_asked_twice_without_echo() {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    use std::io::Read;
    use std::sync::mpsc;

    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let terminal = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().unwrap())
        .unwrap();
    let dir = TempDir::new();
    let file = dir.0.join("passwd");
    let mut child = Command::new(ROOST)
        .args(["passwd", "-c"])
        .arg(&file)
        .arg("kim")
        .stdin(terminal.try_clone().unwrap())
        .stdout(Stdio::null())
        .stderr(terminal)
        .spawn()
        .unwrap();
    let mut master = std::fs::File::from(master);
    let mut reader = master.try_clone().unwrap();
    let (chunks_tx, chunks) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        // Ends with EIO once the child closed the terminal.
        while let Ok(n @ 1..) = reader.read(&mut buf) {
            let _ = chunks_tx.send(buf[..n].to_vec());
        }
    });
    let mut screen = String::new();
    let wait_for = |text: &str, screen: &mut String| {
        while !screen.contains(text) {
            let chunk = chunks
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("no {text:?} on the terminal: {screen:?}"));
            screen.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    wait_for("Password: ", &mut screen);
    master.write_all(b"kimpw\n").unwrap();
    wait_for("Reenter password: ", &mut screen);
    master.write_all(b"kimpw\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "roost passwd did not finish");
        std::thread::sleep(Duration::from_millis(10));
    };
    while let Ok(chunk) = chunks.recv_timeout(Duration::from_millis(200)) {
        screen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(status.success(), "{screen:?}");
    assert!(
        !screen.contains("kimpw"),
        "the password was echoed: {screen:?}"
    );
    assert!(check(&file, "kim", "kimpw"));
}
