//! Redis URLs: `redis://` for a standalone server, `redis+cluster://` for a Redis Cluster.
//!
//! - `redis://[user:pass@]host[:port][/db]`
//! - `redis+cluster://[user:pass@]host1:port1,host2:port2,...` (seed nodes; database 0 only)
//!
//! User and password may be percent-encoded. [`redacted`] is the form to log.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Port used when a URL names none.
pub const DEFAULT_PORT: u16 = 6379;

/// Where Redis is and how to log in.
#[derive(Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server (or a proxy in front of several).
    Standalone {
        /// Server address.
        addr: NodeAddr,
        /// Logical database.
        db: i64,
        /// Login.
        credentials: Credentials,
    },
    /// A Redis Cluster, found through its seed nodes.
    Cluster {
        /// Seed nodes; the client learns the rest from them.
        seeds: Vec<NodeAddr>,
        /// Login, the same on every node.
        credentials: Credentials,
    },
}

/// A `host:port` pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddr {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// ACL user and password; `Debug` never shows the password.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// ACL user (`default` when absent).
    pub username: Option<String>,
    /// Password.
    pub password: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

impl fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Standalone {
                addr,
                db,
                credentials,
            } => f
                .debug_struct("Standalone")
                .field("addr", addr)
                .field("db", db)
                .field("credentials", credentials)
                .finish(),
            Self::Cluster { seeds, credentials } => f
                .debug_struct("Cluster")
                .field("seeds", seeds)
                .field("credentials", credentials)
                .finish(),
        }
    }
}

impl RedisTarget {
    /// Parses a `redis://` or `redis+cluster://` URL.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] naming the (redacted) URL and what is wrong with it.
    pub fn parse(url: &str) -> Result<Self> {
        parse(url).map_err(|reason| Error::InvalidUrl {
            url: redacted(url),
            reason,
        })
    }

    /// Whether this is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster { .. })
    }

    /// Login for every node.
    pub fn credentials(&self) -> &Credentials {
        match self {
            Self::Standalone { credentials, .. } | Self::Cluster { credentials, .. } => credentials,
        }
    }

    /// The nodes named in the URL (one for a standalone server).
    pub fn nodes(&self) -> &[NodeAddr] {
        match self {
            Self::Standalone { addr, .. } => std::slice::from_ref(addr),
            Self::Cluster { seeds, .. } => seeds,
        }
    }

    /// Driver connection settings for each node named in the URL.
    pub(crate) fn connection_infos(&self) -> Result<Vec<redis::ConnectionInfo>> {
        use redis::IntoConnectionInfo;
        let db = match self {
            Self::Standalone { db, .. } => *db,
            Self::Cluster { .. } => 0,
        };
        let creds = self.credentials();
        let mut settings = redis::RedisConnectionInfo::default().set_db(db);
        if let Some(user) = &creds.username {
            settings = settings.set_username(user);
        }
        if let Some(password) = &creds.password {
            settings = settings.set_password(password);
        }
        self.nodes()
            .iter()
            .map(|node| {
                let info = redis::ConnectionAddr::Tcp(node.host.clone(), node.port)
                    .into_connection_info()?;
                Ok(info.set_redis_settings(settings.clone()))
            })
            .collect()
    }
}

impl FromStr for RedisTarget {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// `url` with its password replaced by `***`, for logs and error messages.
pub fn redacted(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let Some(at) = rest.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &rest[..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &userinfo[..colon],
            &rest[at..]
        ),
        None => url.to_owned(),
    }
}

fn parse(url: &str) -> Result<RedisTarget, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("expected redis://host:port or redis+cluster://host1:port1,host2:port2")?;
    let cluster = match scheme {
        "redis" => false,
        "redis+cluster" => true,
        "rediss" | "rediss+cluster" => return Err("TLS is not supported".to_owned()),
        other => {
            return Err(format!(
                "unsupported scheme {other:?}: expected redis or redis+cluster"
            ))
        }
    };
    if rest.contains(['?', '#']) {
        return Err("query parameters and fragments are not supported".to_owned());
    }
    let (userinfo, hostpart) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let credentials = match userinfo {
        None => Credentials::default(),
        Some(info) => {
            let (user, password) = match info.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (info, None),
            };
            Credentials {
                username: Some(percent_decode(user)?).filter(|u| !u.is_empty()),
                password: password.map(percent_decode).transpose()?,
            }
        }
    };
    let (hosts, path) = match hostpart.find('/') {
        Some(slash) => (&hostpart[..slash], &hostpart[slash + 1..]),
        None => (hostpart, ""),
    };
    let nodes = hosts
        .split(',')
        .map(parse_node)
        .collect::<Result<Vec<_>, _>>()?;
    let db = if path.is_empty() {
        0
    } else {
        path.parse::<i64>()
            .ok()
            .filter(|db| *db >= 0)
            .ok_or_else(|| format!("database {path:?} is not a non-negative integer"))?
    };
    if cluster {
        if db != 0 {
            return Err("a Redis Cluster has only database 0".to_owned());
        }
        Ok(RedisTarget::Cluster {
            seeds: nodes,
            credentials,
        })
    } else {
        let [addr] = <[NodeAddr; 1]>::try_from(nodes)
            .map_err(|_| "redis:// takes one host; use redis+cluster:// for several")?;
        Ok(RedisTarget::Standalone {
            addr,
            db,
            credentials,
        })
    }
}

fn parse_node(s: &str) -> Result<NodeAddr, String> {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("unterminated IPv6 address in {s:?}"))?;
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| format!("expected :port after ] in {s:?}"))?,
                ),
            ),
        }
    } else {
        match s.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err(format!("missing host in {s:?}"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("invalid port {p:?}"))?,
    };
    Ok(NodeAddr {
        host: host.to_owned(),
        port,
    })
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("invalid percent escape in user or password")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "user or password is not UTF-8".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(host: &str, port: u16) -> NodeAddr {
        NodeAddr {
            host: host.to_owned(),
            port,
        }
    }

    #[test]
    fn standalone_urls() {
        assert_eq!(
            RedisTarget::parse("redis://127.0.0.1:6379").unwrap(),
            RedisTarget::Standalone {
                addr: node("127.0.0.1", 6379),
                db: 0,
                credentials: Credentials::default(),
            }
        );
        assert_eq!(
            RedisTarget::parse("redis://u:p%40ss@redis.svc/3").unwrap(),
            RedisTarget::Standalone {
                addr: node("redis.svc", DEFAULT_PORT),
                db: 3,
                credentials: Credentials {
                    username: Some("u".to_owned()),
                    password: Some("p@ss".to_owned()),
                },
            }
        );
        let target = RedisTarget::parse("redis://:secret@[::1]:7000/").unwrap();
        assert_eq!(target.nodes(), &[node("::1", 7000)]);
        assert_eq!(target.credentials().username, None);
        assert_eq!(target.credentials().password.as_deref(), Some("secret"));
        assert!(!target.is_cluster());
    }

    #[test]
    fn cluster_urls() {
        let target = RedisTarget::parse("redis+cluster://a:7101,b:7102,127.0.0.1:7103").unwrap();
        assert!(target.is_cluster());
        assert_eq!(
            target.nodes(),
            &[node("a", 7101), node("b", 7102), node("127.0.0.1", 7103)]
        );
        let one = RedisTarget::parse("redis+cluster://user:pw@h:1").unwrap();
        assert_eq!(one.credentials().username.as_deref(), Some("user"));
        assert_eq!(one.connection_infos().unwrap().len(), 1);
    }

    #[test]
    fn bad_urls_are_clear_errors() {
        for (url, needle) in [
            ("localhost:6379", "expected redis://"),
            ("http://x:1", "unsupported scheme"),
            ("rediss://x:1", "TLS"),
            ("redis://a:1,b:2", "one host"),
            ("redis://h:99999", "invalid port"),
            ("redis://h:0", "invalid port"),
            ("redis://:1", "missing host"),
            ("redis://h:1/x", "database"),
            ("redis+cluster://h:1/2", "only database 0"),
            ("redis://h:1?protocol=resp3", "query"),
            ("redis://u:%zz@h", "percent"),
        ] {
            let err = RedisTarget::parse(url).unwrap_err().to_string();
            assert!(err.contains(needle), "{url}: {err}");
        }
    }

    #[test]
    fn errors_and_debug_hide_the_password() {
        let err = RedisTarget::parse("redis://u:hunter2@h:1,h:2")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
        let target = RedisTarget::parse("redis://u:hunter2@h:1").unwrap();
        assert!(!format!("{target:?}").contains("hunter2"));
    }

    #[test]
    fn redaction() {
        assert_eq!(redacted("redis://u:p@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(redacted("redis://:p@h"), "redis://:***@h");
        assert_eq!(redacted("redis://p:a@b@h"), "redis://p:***@h");
        assert_eq!(redacted("redis://user@h"), "redis://user@h");
        assert_eq!(redacted("redis://h:1"), "redis://h:1");
        assert_eq!(
            redacted("redis+cluster://u:x@a:1,b:2"),
            "redis+cluster://u:***@a:1,b:2"
        );
    }
}
