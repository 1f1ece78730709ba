//! The one door for requests reelay makes to URLs others chose: callbacks,
//! the CDN purge, SNS `SubscribeURL` confirmations and signing certificates.
//!
//! Such a URL may only reach public addresses, unless an operator lists a
//! private network in `outbound.allowed_private_networks` (a receiver inside
//! a VPC). The rule is applied twice, to the same addresses the connection
//! uses:
//! - an IP literal in the URL is checked before the request (the URL parser
//!   reads every spelling the WHATWG URL standard does: `2130706433`,
//!   `0x7f.1`, `0177.0.0.1`, `127.1`, `[::ffff:127.0.0.1]` are all
//!   127.0.0.1);
//! - a host name is resolved by [`GuardedResolver`], which drops every
//!   address the rule refuses, so DNS rebinding cannot slip one in between
//!   check and connect.
//!
//! The guarded client follows no redirects, uses no proxy, and a URL with
//! user info is refused. What the requester is told is one of two fixed
//! phrases ([`REFUSED`], [`FAILED`]); the real cause goes to the log.
//!
//! Non-public ranges are those of the IANA IPv4 and IPv6 Special-Purpose
//! Address Registries (RFC 6890 and its updates) that are not globally
//! reachable, plus multicast and everything outside 2000::/3; IPv6 forms
//! that embed an IPv4 address (mapped, compatible, NAT64 64:ff9b::/96,
//! 6to4 2002::/16) are judged by that address.

use ipnet::IpNet;
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// What a refused delivery says.
pub const REFUSED: &str = "refused: not a public address";
/// What any other failed delivery says.
pub const FAILED: &str = "delivery failed";

#[derive(Debug, Clone, Default, Deserialize)]
pub struct OutboundSettings {
    /// CIDRs (e.g. `10.20.0.0/16`, `127.0.0.1/32`) that outbound requests
    /// may reach although they are not public.
    pub allowed_private_networks: Vec<String>,
}

/// Why a URL may not be requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("not an absolute http or https URL")]
    NotHttp,
    #[error("user info (user:password@) is not allowed in the URL")]
    Userinfo,
    #[error("the URL has no host")]
    NoHost,
    #[error("refused: not a public address")]
    NotPublic,
}

/// The address rule with the operator's exceptions.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    allowed: Arc<Vec<IpNet>>,
}

impl Guard {
    /// Errors name the setting and the entry that is not a CIDR.
    pub fn new(settings: &OutboundSettings) -> anyhow::Result<Guard> {
        let mut allowed = Vec::new();
        for entry in &settings.allowed_private_networks {
            let t = entry.trim();
            let net = t
                .parse::<IpNet>()
                .ok()
                .or_else(|| t.parse::<IpAddr>().ok().map(IpNet::from))
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "outbound.allowed_private_networks: {entry:?} is not a CIDR such as 10.0.0.0/8"
                    )
                })?;
            allowed.push(net);
        }
        Ok(Guard {
            allowed: Arc::new(allowed),
        })
    }

    /// May a request connect to `ip`?
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        is_public(ip) || self.allowed.iter().any(|n| n.contains(&ip))
    }

    /// Parses `url` and applies the rule to what can be judged without DNS:
    /// scheme, user info, host, and an IP literal in any spelling.
    pub fn check_url(&self, url: &str) -> Result<url::Url, Refusal> {
        let u = url::Url::parse(url).map_err(|_| Refusal::NotHttp)?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(Refusal::NotHttp);
        }
        if !u.username().is_empty() || u.password().is_some() {
            return Err(Refusal::Userinfo);
        }
        let ip = match u.host() {
            None => return Err(Refusal::NoHost),
            Some(url::Host::Domain(d)) if d.is_empty() || d == "." => return Err(Refusal::NoHost),
            Some(url::Host::Domain(_)) => None,
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        };
        match ip {
            Some(ip) if !self.permits(ip) => Err(Refusal::NotPublic),
            _ => Ok(u),
        }
    }

    /// Resolves `host` and keeps only the addresses the rule permits; none
    /// left is [`Refusal::NotPublic`]. The guarded client connects through
    /// exactly this.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(ResolveError::Lookup)?
            .collect();
        let kept: Vec<SocketAddr> = found
            .iter()
            .copied()
            .filter(|a| self.permits(a.ip()))
            .collect();
        if kept.is_empty() {
            tracing::warn!(%host, addresses = ?found, "outbound request refused: the host resolves to no public address");
            return Err(ResolveError::Refused(Refusal::NotPublic));
        }
        Ok(kept)
    }

    /// An HTTP client that connects only where [`Guard::permits`]: host
    /// names through [`GuardedResolver`], no redirects, no proxy. Callers
    /// still run [`Guard::check_url`] first (IP literals are not resolved).
    pub fn client(&self, timeout: Duration) -> reqwest::Result<reqwest::Client> {
        reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                guard: self.clone(),
            }))
            .user_agent(concat!("reelay/", env!("CARGO_PKG_VERSION")))
            .build()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Refused(Refusal),
    #[error("DNS lookup failed: {0}")]
    Lookup(std::io::Error),
}

/// The DNS resolver of [`Guard::client`].
pub struct GuardedResolver {
    guard: Guard,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.guard.clone();
        Box::pin(async move {
            let addrs = guard.resolve(name.as_str(), 0).await?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// Was this request error the guard's refusal (somewhere in its causes)?
pub fn is_refusal(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        // By type, and by text where a layer in between re-wrapped it.
        if matches!(err.downcast_ref::<Refusal>(), Some(Refusal::NotPublic))
            || matches!(
                err.downcast_ref::<ResolveError>(),
                Some(ResolveError::Refused(_))
            )
            || err.to_string().contains(REFUSED)
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// The phrase a requester sees for a failed request.
pub fn client_text(e: &(dyn std::error::Error + 'static)) -> &'static str {
    if is_refusal(e) {
        REFUSED
    } else {
        FAILED
    }
}

/// Endpoints named as `scheme://host[:port]`, `*` standing for exactly one
/// DNS label (`https://sns.*.amazonaws.com`). A URL matches on scheme, host
/// and port (the scheme's default when the pattern names none).
#[derive(Debug, Clone, Default)]
pub struct HostPatterns(Vec<HostPattern>);

#[derive(Debug, Clone)]
struct HostPattern {
    scheme: String,
    labels: Vec<String>,
    port: u16,
}

impl HostPatterns {
    /// Errors quote the entry that is not `scheme://host[:port]`.
    pub fn new(entries: &[String]) -> anyhow::Result<HostPatterns> {
        let mut out = Vec::new();
        for e in entries {
            let bad = || {
                anyhow::anyhow!("events.sns_hosts: {e:?} is not scheme://host[:port] (http or https; `*` for one DNS label)")
            };
            let (scheme, rest) = e.split_once("://").ok_or_else(bad)?;
            let default_port = match scheme {
                "https" => 443,
                "http" => 80,
                _ => return Err(bad()),
            };
            let rest = rest.strip_suffix('/').unwrap_or(rest);
            let (host, port) = match rest.rsplit_once(':') {
                Some((h, p)) if !h.contains(']') || h.ends_with(']') => {
                    (h, p.parse::<u16>().map_err(|_| bad())?)
                }
                _ => (rest, default_port),
            };
            let labels: Vec<String> = host
                .to_ascii_lowercase()
                .split('.')
                .map(str::to_string)
                .collect();
            if host.is_empty()
                || host.contains(['/', '@', '?', '#'])
                || labels.iter().any(|l| l.is_empty())
            {
                return Err(bad());
            }
            out.push(HostPattern {
                scheme: scheme.to_string(),
                labels,
                port,
            });
        }
        Ok(HostPatterns(out))
    }

    pub fn matches(&self, url: &url::Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let host = host.to_ascii_lowercase();
        let labels: Vec<&str> = host.split('.').collect();
        self.0.iter().any(|p| {
            p.scheme == url.scheme()
                && Some(p.port) == url.port_or_known_default()
                && p.labels.len() == labels.len()
                && p.labels
                    .iter()
                    .zip(&labels)
                    .all(|(want, got)| !got.is_empty() && (want == "*" || want == got))
        })
    }
}

/// IPv4-mapped `::ffff:a.b.c.d` as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Globally reachable unicast: not loopback, private, shared, link-local,
/// documentation, benchmarking, reserved, multicast or broadcast.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], bits: u32) -> bool {
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

const V4_REFUSED: &[([u8; 4], u32)] = &[
    ([0, 0, 0, 0], 8),       // "this network", unspecified
    ([10, 0, 0, 0], 8),      // RFC 1918
    ([100, 64, 0, 0], 10),   // shared address space (CGNAT), RFC 6598
    ([127, 0, 0, 0], 8),     // loopback
    ([169, 254, 0, 0], 16),  // link-local (cloud metadata 169.254.169.254)
    ([172, 16, 0, 0], 12),   // RFC 1918
    ([192, 0, 0, 0], 24),    // IETF protocol assignments
    ([192, 0, 2, 0], 24),    // TEST-NET-1
    ([192, 88, 99, 0], 24),  // 6to4 relay anycast (deprecated)
    ([192, 168, 0, 0], 16),  // RFC 1918
    ([198, 18, 0, 0], 15),   // benchmarking
    ([198, 51, 100, 0], 24), // TEST-NET-2
    ([203, 0, 113, 0], 24),  // TEST-NET-3
    ([224, 0, 0, 0], 4),     // multicast
    ([240, 0, 0, 0], 4),     // reserved, and 255.255.255.255 broadcast
];

fn is_public_v4(ip: Ipv4Addr) -> bool {
    !V4_REFUSED.iter().any(|(net, bits)| in_v4(ip, *net, *bits))
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, bits: u32) -> bool {
    let mask = if bits == 0 {
        0
    } else {
        u128::MAX << (128 - bits)
    };
    u128::from(ip) & mask == u128::from(net) & mask
}

const fn v6(s: [u16; 8]) -> Ipv6Addr {
    Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7])
}

const V6_REFUSED: &[(Ipv6Addr, u32)] = &[
    (v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0]), 48), // local-use NAT64
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0]), 64),     // discard-only
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0]), 23), // IETF protocol assignments (Teredo, benchmarking, ORCHID)
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0]), 32), // documentation
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0]), 20), // documentation (RFC 9637)
    (v6([0x5f00, 0, 0, 0, 0, 0, 0, 0]), 16), // SRv6 SIDs
];

fn embedded_v4(bits: u128) -> Ipv4Addr {
    Ipv4Addr::from((bits & 0xffff_ffff) as u32)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let bits = u128::from(ip);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    // ::/96, IPv4-compatible (deprecated), also :: and ::1.
    if bits >> 32 == 0 {
        return false;
    }
    // NAT64 well-known prefix: judged by the IPv4 address it translates to.
    if in_v6(ip, v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0]), 96) {
        return is_public_v4(embedded_v4(bits));
    }
    // 6to4: 2002:AABB:CCDD::/48 carries AA.BB.CC.DD.
    if in_v6(ip, v6([0x2002, 0, 0, 0, 0, 0, 0, 0]), 16) {
        return is_public_v4(embedded_v4(bits >> 80));
    }
    if V6_REFUSED.iter().any(|(net, b)| in_v6(ip, *net, *b)) {
        return false;
    }
    // Only 2000::/3 is global unicast; this also refuses fc00::/7
    // (unique-local), fe80::/10 (link-local), fec0::/10 and ff00::/8.
    in_v6(ip, v6([0x2000, 0, 0, 0, 0, 0, 0, 0]), 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_non_public_address_is_refused() {
        for a in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "169.254.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "100::1",
            "2001::1",
            "2001:2::1",
            "2001:db8::1",
            "2002:7f00:1::1",
            "2002:a00:1::",
            "2002:c0a8:101::1",
            "3fff::1",
            "5f00::1",
            "fc00::1",
            "fd00::",
            "fd12:3456:789a::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "ff05::2",
            "fd00:ec2::254",
        ] {
            assert!(!is_public(ip(a)), "{a} must be refused");
            assert!(!Guard::default().permits(ip(a)), "{a} must be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for a in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "192.0.1.1",
            "198.17.255.255",
            "198.20.0.1",
            "223.255.255.254",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(is_public(ip(a)), "{a} is public");
        }
    }

    #[test]
    fn the_allow_list_opens_only_its_networks() {
        let g = Guard::new(&OutboundSettings {
            allowed_private_networks: vec!["10.20.0.0/16".into(), "::1".into()],
        })
        .unwrap();
        assert!(g.permits(ip("10.20.3.4")));
        assert!(g.permits(ip("::ffff:10.20.3.4")), "mapped form too");
        assert!(g.permits(ip("::1")));
        assert!(!g.permits(ip("10.21.0.1")));
        assert!(!g.permits(ip("127.0.0.1")));
        assert!(!g.permits(ip("169.254.169.254")));
        let err = Guard::new(&OutboundSettings {
            allowed_private_networks: vec!["10.0.0.0/33".into()],
        })
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("outbound.allowed_private_networks"),
            "{err}"
        );
    }

    #[test]
    fn every_spelling_of_an_internal_ip_is_refused_in_a_url() {
        let g = Guard::default();
        for u in [
            "http://127.0.0.1:9000/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://0177.1/",
            "http://127.1/",
            "http://127.0.1/",
            "http://127.0.0.1./",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[0:0:0:0:0:0:0:1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://0xa9.0xfe.0xa9.0xfe/",
            "http://2852039166/",
            "http://[fd00::]/",
            "http://[fe80::1%25eth0]/",
            "http://0/",
            "http://10.1/",
            "https://192.168.0.1:8443/x",
        ] {
            match g.check_url(u) {
                Err(Refusal::NotPublic) | Err(Refusal::NotHttp) => {}
                other => panic!("{u}: {other:?}"),
            }
        }
        assert_eq!(
            g.check_url("http://user:pw@example.com/"),
            Err(Refusal::Userinfo)
        );
        assert_eq!(g.check_url("http://@example.com/").map(|_| ()), Ok(()));
        assert_eq!(g.check_url("ftp://example.com/"), Err(Refusal::NotHttp));
        assert_eq!(g.check_url("not a url"), Err(Refusal::NotHttp));
        assert!(g.check_url("https://hooks.example.com/x").is_ok());
        assert!(g.check_url("http://8.8.8.8/").is_ok());
    }

    #[test]
    fn host_patterns_match_one_label_per_star_and_the_exact_scheme_and_port() {
        let p = HostPatterns::new(&[
            "https://sns.*.amazonaws.com".into(),
            "http://127.0.0.1:4000".into(),
        ])
        .unwrap();
        let m = |u: &str| p.matches(&url::Url::parse(u).unwrap());
        assert!(m(
            "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem"
        ));
        assert!(m("https://SNS.us-east-1.amazonaws.com:443/x"));
        assert!(m("http://127.0.0.1:4000/cert.pem"));
        assert!(!m("http://sns.eu-west-1.amazonaws.com/x"), "scheme");
        assert!(!m("https://sns.eu-west-1.amazonaws.com:8443/x"), "port");
        assert!(!m("https://sns.a.b.amazonaws.com/x"), "one label per star");
        assert!(!m("https://sns.amazonaws.com/x"));
        assert!(!m("https://sns.eu-west-1.amazonaws.com.evil.example/x"));
        assert!(!m("https://evil.example/sns.eu-west-1.amazonaws.com"));
        assert!(!m("http://127.0.0.1:4001/cert.pem"));
        for bad in [
            "sns.amazonaws.com",
            "ftp://x",
            "https://",
            "https://a/b",
            "https://a:x",
        ] {
            assert!(HostPatterns::new(&[bad.into()]).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused_after_resolution() {
        // /etc/hosts answers; nothing leaves the machine.
        let g = Guard::default();
        let err = g.resolve("localhost", 80).await.unwrap_err();
        assert!(matches!(err, ResolveError::Refused(Refusal::NotPublic)));
        assert!(is_refusal(&err));
        assert_eq!(client_text(&err), REFUSED);
        let allowed = Guard::new(&OutboundSettings {
            allowed_private_networks: vec!["127.0.0.0/8".into(), "::1/128".into()],
        })
        .unwrap();
        let addrs = allowed.resolve("localhost", 80).await.unwrap();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
        let io = std::io::Error::other("connection refused");
        assert_eq!(client_text(&io), FAILED);
    }
}
