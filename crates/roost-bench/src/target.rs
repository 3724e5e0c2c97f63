//! Where clients connect to and from. The load generator refuses anything
//! but loopback unless told otherwise: it can open tens of thousands of
//! connections a second, which must never be aimed at someone's server by a
//! typo.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use anyhow::{Context, bail};

use crate::args::CommonArgs;

/// Broker addresses and local source addresses, used round-robin.
#[derive(Debug, Clone)]
pub struct Targets {
    brokers: Vec<SocketAddr>,
    sources: Vec<IpAddr>,
}

impl Targets {
    /// Resolves `-h`/`-p`/`--ifaddr`, enforcing loopback unless `--allow-remote`.
    pub fn resolve(common: &CommonArgs) -> anyhow::Result<Self> {
        Self::resolve_hosts(&common.hosts, common)
    }

    /// [`Targets::resolve`] with other broker hosts than `-h` (e.g. `--sub-host`),
    /// on the same port and source addresses.
    pub fn resolve_hosts(hosts: &[String], common: &CommonArgs) -> anyhow::Result<Self> {
        let mut brokers = Vec::new();
        for host in hosts {
            let addr = resolve_host(host, common.port)?;
            if !common.allow_remote && !is_loopback(addr.ip()) {
                bail!(
                    "refusing to connect to {host} ({}): not a loopback address; \
                     pass --allow-remote if you really mean to load a remote broker",
                    addr.ip()
                );
            }
            brokers.push(addr);
        }
        if brokers.is_empty() {
            bail!("no broker host given (-h)");
        }
        let mut sources = Vec::new();
        for text in &common.ifaddr {
            let ip: IpAddr = text
                .trim()
                .parse()
                .with_context(|| format!("--ifaddr {text:?} is not an IP address"))?;
            if !common.allow_remote && !is_loopback(ip) {
                bail!("--ifaddr {ip} is not a loopback address (pass --allow-remote to allow it)");
            }
            if brokers.iter().any(|b| b.is_ipv4() != ip.is_ipv4()) {
                bail!("--ifaddr {ip} is not of the same address family as the broker host(s)");
            }
            sources.push(ip);
        }
        Ok(Self { brokers, sources })
    }

    /// The broker client `index` connects to.
    pub fn broker_for(&self, index: u64) -> SocketAddr {
        pick(&self.brokers, index).copied().unwrap_or_else(|| {
            // `resolve` guarantees at least one broker; keep a sane fallback anyway.
            SocketAddr::from(([127, 0, 0, 1], 1883))
        })
    }

    /// The local address client `index` binds to, if `--ifaddr` was given.
    pub fn source_for(&self, index: u64) -> Option<IpAddr> {
        pick(&self.sources, index).copied()
    }

    /// Number of `--ifaddr` source addresses.
    pub fn source_count(&self) -> usize {
        self.sources.len()
    }
}

fn pick<T>(items: &[T], index: u64) -> Option<&T> {
    let len = u64::try_from(items.len()).ok().filter(|&n| n > 0)?;
    items.get(usize::try_from(index % len).ok()?)
}

/// True for 127.0.0.0/8, ::1 and IPv4-mapped loopback.
pub fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

fn resolve_host(host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    let addrs: Vec<SocketAddr> = (host.trim(), port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve host {host:?}"))?
        .collect();
    // Prefer IPv4 (what brokers bind by default), and refuse the whole
    // name if any of its addresses is remote: we would not know which one
    // the clients end up using.
    if let Some(remote) = addrs.iter().find(|a| !is_loopback(a.ip())) {
        return Ok(*remote);
    }
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .with_context(|| format!("host {host:?} resolves to no address"))
}
