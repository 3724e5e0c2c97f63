//! `$SYS/broker/heap/current` and `/maximum`: the process's resident set
//! size and its peak (Linux `/proc/self/status`, `VmRSS` and `VmHWM`).
//!
//! Mosquitto reports the bytes its own allocation wrappers hold; Roost's
//! allocator (mimalloc in the server, the system's when embedded) keeps no
//! such total without its statistics build, so the resident size is the
//! honest answer: it includes the allocator's retained pages, stacks and
//! the binary itself.

/// `(current, maximum)` resident bytes; `None` where `/proc` is missing.
pub(super) fn resident() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse(&status)
}

fn parse(status: &str) -> Option<(u64, u64)> {
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    };
    let current = field("VmRSS:")?;
    Some((current, field("VmHWM:").unwrap_or(current)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_and_hwm_are_read_in_bytes() {
        let status = "Name:\troost\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(parse(status), Some((10_485_760, 20_971_520)));
        assert_eq!(parse("Name:\troost\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_a_resident_size() {
        let (current, maximum) = resident().unwrap_or_default();
        assert!(current > 0 && maximum >= current);
    }
}
