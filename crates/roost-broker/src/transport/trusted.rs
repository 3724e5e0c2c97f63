//! Trusted proxies: which peers may tell us the real client address in
//! `X-Forwarded-For` / `X-Real-IP`, and how to read those headers without
//! letting a client forge its address.

use std::net::IpAddr;

/// An IP address or CIDR block (`10.0.0.0/8`, `2001:db8::/32`, `127.0.0.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Parses `ip` or `ip/prefix`.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let (ip, prefix) = match text.split_once('/') {
            Some((ip, prefix)) => (ip, Some(prefix.parse::<u8>().ok()?)),
            None => (text, None),
        };
        let addr: IpAddr = ip.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { addr, prefix })
    }

    /// Whether `ip` is inside the block (IPv4-mapped IPv6 peers match IPv4 blocks).
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// A list of trusted proxies.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses the configured entries; invalid ones were rejected by config validation.
    pub(crate) fn new(entries: &[String]) -> Self {
        Self(entries.iter().filter_map(|e| IpNet::parse(e)).collect())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }

    /// The client address according to the forwarding headers, when `peer`
    /// is a trusted proxy. `X-Forwarded-For` is read from the right (the hop
    /// nearest to us) and the first address that is not itself a trusted
    /// proxy wins, so a client cannot forge its address by prepending
    /// entries. `X-Real-IP` is used when there is no `X-Forwarded-For`.
    pub(crate) fn client_ip(
        &self,
        peer: IpAddr,
        forwarded_for: Option<&str>,
        real_ip: Option<&str>,
    ) -> Option<IpAddr> {
        if !self.trusts(peer) {
            return None;
        }
        if let Some(list) = forwarded_for {
            let mut last_trusted = None;
            for hop in list.rsplit(',') {
                let ip = parse_hop(hop)?;
                if !self.trusts(ip) {
                    return Some(ip);
                }
                last_trusted = Some(ip);
            }
            // Every hop is a trusted proxy: the farthest one is the client.
            return last_trusted;
        }
        real_ip.and_then(parse_hop)
    }
}

/// One `X-Forwarded-For` entry: an IP, possibly with a port or brackets.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    hop.parse::<std::net::SocketAddr>().ok().map(|a| a.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn cidr_blocks_match_their_members_only() {
        let net = IpNet::parse("10.1.0.0/16");
        assert!(net.is_some_and(|n| n.contains(ip("10.1.200.3")) && !n.contains(ip("10.2.0.1"))));
        let single = IpNet::parse("127.0.0.1");
        assert!(
            single
                .is_some_and(|n| n.contains(ip("127.0.0.1")) && n.contains(ip("::ffff:127.0.0.1")))
        );
        let v6 = IpNet::parse("2001:db8::/32");
        assert!(
            v6.is_some_and(|n| n.contains(ip("2001:db8:1::5")) && !n.contains(ip("2001:db9::1")))
        );
        assert!(IpNet::parse("0.0.0.0/0").is_some_and(|n| n.contains(ip("203.0.113.9"))));
        assert_eq!(IpNet::parse("10.0.0.0/33"), None);
        assert_eq!(IpNet::parse("example.com"), None);
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_peers() {
        let trusted = TrustedProxies::new(&["127.0.0.1".into(), "10.0.0.0/8".into()]);
        let from_proxy = trusted.client_ip(ip("127.0.0.1"), Some("203.0.113.9"), None);
        assert_eq!(from_proxy, Some(ip("203.0.113.9")));
        let from_stranger = trusted.client_ip(ip("198.51.100.1"), Some("203.0.113.9"), None);
        assert_eq!(
            from_stranger, None,
            "an untrusted peer cannot claim another address"
        );
    }

    #[test]
    fn forged_leftmost_entries_are_ignored() {
        let trusted = TrustedProxies::new(&["10.0.0.0/8".into()]);
        // The client sent "X-Forwarded-For: 1.2.3.4"; the proxy appended the real address.
        let got = trusted.client_ip(ip("10.0.0.2"), Some("1.2.3.4, 203.0.113.9, 10.0.0.7"), None);
        assert_eq!(got, Some(ip("203.0.113.9")));
        let real_ip = trusted.client_ip(ip("10.0.0.2"), None, Some("203.0.113.10"));
        assert_eq!(real_ip, Some(ip("203.0.113.10")));
        assert_eq!(
            trusted.client_ip(ip("10.0.0.2"), Some("garbage"), None),
            None
        );
    }
}
