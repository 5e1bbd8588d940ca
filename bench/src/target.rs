//! Where the bench may connect: the `--target` server's addresses and those of the gateway
//! URLs given with `--gateway`, nothing else; plus the local source address each worker binds
//! its sockets to.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{bail, Context};
use reqwest::Url;
use serde::{Deserialize, Serialize};

/// The server under test, as given by `--target`.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://host:port`, without a trailing slash.
    pub base: String,
    /// Addresses the host name resolved to; the only ones the bench connects to.
    pub addrs: Vec<IpAddr>,
}

impl Target {
    /// Parses and resolves `--target`.
    ///
    /// # Errors
    /// When the URL is not `http://host[:port]` or the host does not resolve.
    pub async fn resolve(raw: &str) -> anyhow::Result<Self> {
        let url = Url::parse(raw).with_context(|| format!("--target `{raw}` is not a URL"))?;
        if url.scheme() != "http" {
            bail!("--target must be an http:// URL (the bench speaks plain HTTP and WebSocket)");
        }
        let host = url.host_str().context("--target has no host")?;
        let port = url.port_or_known_default().unwrap_or(80);
        let addrs = resolve(host, port).await?;
        Ok(Self {
            base: format!("http://{host}:{port}"),
            addrs,
        })
    }

    /// REST base, `…/api/v10`.
    pub fn api(&self) -> String {
        format!("{}/api/v10", self.base)
    }

    /// Whether every address is a loopback one (then workers spread over 127.0.0.x).
    pub fn is_loopback(&self) -> bool {
        self.addrs.iter().all(IpAddr::is_loopback)
    }
}

/// A WebSocket URL the bench may use, resolved and checked against the target's addresses.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GatewayUrl {
    /// The URL as given.
    pub url: String,
    /// `Host` header value.
    pub authority: String,
    /// Path (at least `/`).
    pub path: String,
    /// Where to connect.
    pub addr: SocketAddr,
}

impl GatewayUrl {
    /// Parses `raw` (`ws://host:port[/path]`) and resolves it; its address must be one of
    /// `allowed`.
    ///
    /// # Errors
    /// When the URL is not `ws://`, does not resolve, or points elsewhere than the target.
    pub async fn resolve(raw: &str, allowed: &[IpAddr]) -> anyhow::Result<Self> {
        let (url, addrs) = Self::lookup(raw).await?;
        let Some(ip) = addrs.iter().find(|ip| allowed.contains(ip)) else {
            bail!(
                "gateway URL `{raw}` resolves to {addrs:?}, which is neither the target nor a \
                 --gateway URL ({allowed:?}); the bench connects only where it is told (pass \
                 --gateway to name the gateway's address)"
            );
        };
        Ok(Self::at(raw, &url, *ip))
    }

    /// Parses and resolves a URL given by the user (`--gateway`), which the bench may use
    /// wherever it points; returns it with every address its host resolves to, so that a
    /// `resume_gateway_url` on the same host is accepted too.
    ///
    /// # Errors
    /// When the URL is not `ws://` or does not resolve.
    pub async fn given(raw: &str) -> anyhow::Result<(Self, Vec<IpAddr>)> {
        let (url, addrs) = Self::lookup(raw).await?;
        Ok((Self::at(raw, &url, addrs[0]), addrs))
    }

    async fn lookup(raw: &str) -> anyhow::Result<(Url, Vec<IpAddr>)> {
        let url = Url::parse(raw).with_context(|| format!("gateway URL `{raw}` is not a URL"))?;
        if url.scheme() != "ws" && url.scheme() != "http" {
            bail!("gateway URL `{raw}` is not ws:// (the bench does not speak TLS)");
        }
        let host = url.host_str().context("gateway URL has no host")?;
        let port = url.port_or_known_default().unwrap_or(80);
        let addrs = resolve(host, port).await?;
        Ok((url, addrs))
    }

    fn at(raw: &str, url: &Url, ip: IpAddr) -> Self {
        let host = url.host_str().unwrap_or_default();
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        Self {
            url: raw.to_owned(),
            authority,
            path: url.path().to_owned(),
            addr: SocketAddr::new(ip, url.port_or_known_default().unwrap_or(80)),
        }
    }
}

async fn resolve(host: &str, port: u16) -> anyhow::Result<Vec<IpAddr>> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<IpAddr> = tokio::net::lookup_host((host, port))
        .await
        .with_context(|| format!("resolving `{host}`"))?
        .map(|a| a.ip())
        .collect();
    if addrs.is_empty() {
        bail!("`{host}` resolves to no address");
    }
    Ok(addrs)
}

/// The source address of each of `workers` workers: from `--source-addrs` when given
/// (round-robin), else 127.0.0.(k+1) for worker k when the target is an IPv4 loopback
/// address (each source address has its own ~28k ephemeral ports), else none.
///
/// # Errors
/// When `--source-addrs` holds something that is not an IP address.
pub fn source_addrs(
    given: Option<&str>,
    target: &Target,
    workers: usize,
) -> anyhow::Result<Vec<Option<IpAddr>>> {
    if let Some(list) = given {
        let addrs = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpAddr>()
                    .with_context(|| format!("--source-addrs: `{s}` is not an IP address"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        if addrs.is_empty() {
            bail!("--source-addrs is empty");
        }
        return Ok((0..workers).map(|k| Some(addrs[k % addrs.len()])).collect());
    }
    let v4_loopback = target.is_loopback() && target.addrs.iter().any(IpAddr::is_ipv4);
    Ok((0..workers)
        .map(|k| {
            v4_loopback.then(|| {
                let base = u32::from(Ipv4Addr::new(127, 0, 0, 1));
                // 127.0.0.0/8 is loopback as a whole, so past .255 the next octet moves.
                IpAddr::V4(Ipv4Addr::from(base + (k as u32 % 0x00ff_fffe)))
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_targets_spread_sources() {
        let target = Target::resolve("http://127.0.0.1:9").await.unwrap();
        assert_eq!(target.api(), "http://127.0.0.1:9/api/v10");
        let sources = source_addrs(None, &target, 3).unwrap();
        assert_eq!(
            sources,
            [
                Some("127.0.0.1".parse().unwrap()),
                Some("127.0.0.2".parse().unwrap()),
                Some("127.0.0.3".parse().unwrap())
            ]
        );
        let given = source_addrs(Some("127.0.0.9, 127.0.0.8"), &target, 3).unwrap();
        assert_eq!(given[2], Some("127.0.0.9".parse().unwrap()));
        assert!(source_addrs(Some("nope"), &target, 1).is_err());
        assert!(Target::resolve("https://127.0.0.1:9").await.is_err());
    }

    #[tokio::test]
    async fn gateway_urls_must_point_at_the_target() {
        let allowed: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap()];
        let ok = GatewayUrl::resolve("ws://127.0.0.1:8080", &allowed)
            .await
            .unwrap();
        assert_eq!(ok.path, "/");
        assert_eq!(ok.authority, "127.0.0.1:8080");
        assert!(GatewayUrl::resolve("ws://127.0.0.2:8080", &allowed)
            .await
            .is_err());
        // A URL given by the user is taken as it is, with its addresses.
        let (given, addrs) = GatewayUrl::given("ws://127.0.0.2:9000/gw").await.unwrap();
        assert_eq!(given.addr, "127.0.0.2:9000".parse().unwrap());
        assert_eq!(given.path, "/gw");
        assert_eq!(addrs, ["127.0.0.2".parse::<IpAddr>().unwrap()]);
        assert!(GatewayUrl::given("wss://127.0.0.2:9000").await.is_err());
    }
}
