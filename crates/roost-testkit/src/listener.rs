//! Whether a child process really owns the port a test started it on.
//!
//! A test picks a free port, releases it and starts a server on it; another
//! test may pick the same port meanwhile. "Something answers on the port"
//! then proves nothing: the other test's server answers while ours fails to
//! bind, and the two tests share (and kill each other's connections on) one
//! server. Asking the kernel which process holds the listening socket does.

/// True when process `pid` holds a listening TCP socket on `port` (IPv4,
/// from /proc/net/tcp and /proc/PID/fd; Linux only: elsewhere, always true).
pub fn owns_listener(pid: u32, port: u16) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return true;
    };
    let local = format!(":{port:04X}");
    // Columns: sl, local_address, rem_address, st (0A = LISTEN), …, inode (10th).
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let listening = cols.get(1)?.ends_with(&local) && *cols.get(3)? == "0A";
            listening.then(|| format!("socket:[{}]", cols.get(9).copied().unwrap_or("")))
        })
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(Result::ok)
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .any(|target| inodes.iter().any(|i| target.as_os_str() == i.as_str()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use super::*;

    #[test]
    fn this_process_owns_its_listener_and_not_a_free_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        assert!(owns_listener(std::process::id(), port));
        drop(listener);
        assert!(!owns_listener(std::process::id(), port));
    }
}
