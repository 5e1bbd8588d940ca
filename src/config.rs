//! Command-line and environment configuration of the all-in-one server.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Parser;
use concord_gateway_shard::config as shard;

/// Default public listener (REST and gateway).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default admin listener (metrics, health).
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9090";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./data";
/// Default number of in-process gateway shards.
pub const DEFAULT_SHARDS: u16 = 4;
/// Default address of a shard process's session-link listener.
pub const DEFAULT_LINK_LISTEN: &str = "127.0.0.1:7000";
/// Default slot and membership lease, in milliseconds.
pub const DEFAULT_LEASE_TTL_MS: u64 = 5_000;
/// Default time a draining router spreads its op 7s over, in milliseconds.
pub const DEFAULT_DRAIN_MS: u64 = 20_000;
/// Default gateway heartbeat interval, the shard's own default.
pub const DEFAULT_HEARTBEAT_INTERVAL_MS: u64 = shard::DEFAULT_HEARTBEAT_INTERVAL.as_millis() as u64;

/// Concord: a Discord API v10 compatible chat server.
///
/// Without a subcommand, everything runs in one process (SQLite by default, no Redis). The
/// subcommands run one role of a cluster on PostgreSQL and Redis.
#[derive(Clone, Parser)]
#[command(name = "concord", version, about)]
pub struct Config {
    /// Cluster role; none runs the all-in-one server.
    #[command(subcommand)]
    pub role: Option<Role>,

    /// Redis of the cluster roles: `redis://[user:pass@]host:port` (standalone) or
    /// `redis+cluster://host:port,host:port,…` (a Redis Cluster by its seed nodes).
    #[arg(long, env = "CONCORD_REDIS_URL", global = true, hide_env_values = true)]
    pub redis_url: Option<Secret>,

    /// Number of slots of a new cluster (fixed at `cluster init`; every process must agree).
    #[arg(long, env = "CONCORD_SLOTS", global = true, default_value_t = concord_core::topology::DEFAULT_SLOT_COUNT)]
    pub slots: u16,

    /// Node ordinal of a shard process; defaults to the `-N` suffix of `$HOSTNAME` (the
    /// StatefulSet pod ordinal).
    #[arg(long, env = "CONCORD_NODE_ID", global = true)]
    pub node_id: Option<u16>,

    /// Where a shard process accepts links from routers.
    #[arg(long, env = "CONCORD_LINK_LISTEN", global = true, default_value = DEFAULT_LINK_LISTEN)]
    pub link_listen: SocketAddr,

    /// Address routers use to reach this shard process's link listener; defaults to
    /// `--link-listen`.
    #[arg(long, env = "CONCORD_ADVERTISE_ADDR", global = true)]
    pub advertise_addr: Option<String>,

    /// Membership and slot lease length in milliseconds: a dead shard process's slots move
    /// after at most this long.
    #[arg(long, env = "CONCORD_LEASE_TTL_MS", global = true, default_value_t = DEFAULT_LEASE_TTL_MS)]
    pub lease_ttl_ms: u64,

    /// Identify buckets per bot (`max_concurrency` of `/gateway/bot`): a bot may identify once
    /// per 5 s per bucket, enforced cluster-wide in the cluster roles.
    #[arg(global = true, long, env = "CONCORD_MAX_CONCURRENCY", default_value_t = concord_gateway_shard::config::DEFAULT_MAX_CONCURRENCY)]
    pub max_concurrency: u32,

    /// How long a draining router keeps connections open after op 7, in milliseconds.
    #[arg(long, env = "CONCORD_DRAIN_MS", global = true, default_value_t = DEFAULT_DRAIN_MS)]
    pub drain_ms: u64,

    /// Address for REST (`/api/v10`) and the gateway WebSocket (any path with an Upgrade header).
    #[arg(global = true, long, env = "CONCORD_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// Address for `/metrics`, `/healthz` and `/readyz`.
    #[arg(global = true, long, env = "CONCORD_ADMIN_LISTEN", default_value = DEFAULT_ADMIN_LISTEN)]
    pub admin_listen: SocketAddr,

    /// Directory for the SQLite database and the generated token secret.
    #[arg(global = true, long, env = "CONCORD_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,

    /// `sqlite://FILE` or `postgres://…`; defaults to `sqlite://<data-dir>/concord.db`.
    #[arg(global = true, long, env = "CONCORD_DATABASE_URL")]
    pub database_url: Option<String>,

    /// Number of in-process gateway shards behind the router.
    #[arg(global = true, long, env = "CONCORD_SHARDS", default_value_t = DEFAULT_SHARDS)]
    pub shards: u16,

    /// Gateway URL given to clients (`/gateway`, `resume_gateway_url`); defaults to `ws://<listen>`.
    #[arg(global = true, long, env = "CONCORD_PUBLIC_GATEWAY_URL")]
    pub public_gateway_url: Option<String>,

    /// File holding the token-signing secret (at least 32 bytes); generated in the data
    /// directory when neither this nor `CONCORD_TOKEN_SECRET` is set.
    #[arg(global = true, long, env = "CONCORD_TOKEN_SECRET_FILE")]
    pub token_secret_file: Option<PathBuf>,

    /// Token-signing secret itself (at least 32 bytes).
    #[arg(
        global = true,
        long = "token-secret",
        env = "CONCORD_TOKEN_SECRET",
        hide_env_values = true
    )]
    pub token_secret: Option<Secret>,

    /// Snowflake worker id (0–31); unique per process together with `--snowflake-process`.
    #[arg(
        global = true,
        long,
        env = "CONCORD_SNOWFLAKE_WORKER",
        default_value_t = 0
    )]
    pub snowflake_worker: u8,

    /// Snowflake process id (0–31).
    #[arg(
        global = true,
        long,
        env = "CONCORD_SNOWFLAKE_PROCESS",
        default_value_t = 0
    )]
    pub snowflake_process: u8,

    /// Whether new applications get the privileged intents enabled.
    #[arg(global = true, long, env = "CONCORD_PRIVILEGED_INTENTS_DEFAULT", default_value_t = true, action = clap::ArgAction::Set)]
    pub privileged_intents_default: bool,

    /// Gateway heartbeat interval in milliseconds.
    #[arg(global = true, long, env = "CONCORD_HEARTBEAT_INTERVAL_MS", default_value_t = DEFAULT_HEARTBEAT_INTERVAL_MS)]
    pub heartbeat_interval_ms: u64,

    /// Deflate window bits for `zlib-stream` (9–15); memory per context grows with it.
    #[arg(global = true, long, env = "CONCORD_ZLIB_WINDOW_BITS", default_value_t = shard::DEFAULT_ZLIB_WINDOW_BITS)]
    pub zlib_window_bits: u8,

    /// zstd window log for `zstd-stream` (10–22); memory per context grows with it.
    #[arg(global = true, long, env = "CONCORD_ZSTD_WINDOW_LOG", default_value_t = shard::DEFAULT_ZSTD_WINDOW_LOG)]
    pub zstd_window_log: u32,

    /// Requests per route bucket (caller, route, top-level id) per window.
    #[arg(global = true, long, env = "CONCORD_RATE_LIMIT_ROUTE", default_value_t = concord_api::config::DEFAULT_ROUTE_LIMIT)]
    pub rate_limit_route: u32,

    /// Length of a route bucket's window in milliseconds.
    #[arg(
        global = true,
        long,
        env = "CONCORD_RATE_LIMIT_ROUTE_WINDOW_MS",
        default_value_t = 1000
    )]
    pub rate_limit_route_window_ms: u64,

    /// Requests per second per caller across all routes.
    #[arg(global = true, long, env = "CONCORD_RATE_LIMIT_GLOBAL", default_value_t = concord_api::config::DEFAULT_GLOBAL_LIMIT_PER_SECOND)]
    pub rate_limit_global: u32,

    /// Log format: `text` or `json`.
    #[arg(
        global = true,
        long,
        env = "CONCORD_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

/// A cluster role.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Role {
    /// The REST tier: writes to PostgreSQL, publishes events to the slots' Redis streams.
    Api,
    /// The public gateway: terminates WebSockets and links sessions to shard processes.
    Router,
    /// A gateway shard process: holds the slots it wins and their sessions.
    Shard,
    /// Cluster administration.
    Cluster {
        /// What to do.
        #[command(subcommand)]
        action: ClusterAction,
    },
}

/// `concord cluster …`.
#[derive(Debug, Clone, Copy, clap::Subcommand)]
pub enum ClusterAction {
    /// Writes the cluster's settings (slot count) once; later calls report the existing ones.
    Init,
    /// Prints the slot table, members, owners and log lag.
    Status,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (cluster mode).
    Json,
}

/// A secret value that never prints itself.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("admin_listen", &self.admin_listen)
            .field("data_dir", &self.data_dir)
            .field(
                "database",
                &self
                    .database_url
                    .as_deref()
                    .map(concord_store_sql::redacted),
            )
            .field("shards", &self.shards)
            .field("public_gateway_url", &self.public_gateway_url)
            .field("token_secret", &self.token_secret)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Checks ranges; the message names the variable at fault.
    ///
    /// # Errors
    /// When a value is out of range.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.shards == 0 || self.shards > 1024 {
            bail!("CONCORD_SHARDS / --shards must be between 1 and 1024");
        }
        if self.snowflake_worker > 31 || self.snowflake_process > 31 {
            bail!(
                "CONCORD_SNOWFLAKE_WORKER and CONCORD_SNOWFLAKE_PROCESS must be between 0 and 31"
            );
        }
        if !shard::ZLIB_WINDOW_BITS_RANGE.contains(&self.zlib_window_bits) {
            bail!("CONCORD_ZLIB_WINDOW_BITS / --zlib-window-bits must be between 9 and 15");
        }
        if !shard::ZSTD_WINDOW_LOG_RANGE.contains(&self.zstd_window_log) {
            bail!("CONCORD_ZSTD_WINDOW_LOG / --zstd-window-log must be between 10 and 22");
        }
        if self.slots == 0 || self.slots > concord_core::topology::MAX_SLOT_COUNT {
            bail!("CONCORD_SLOTS / --slots must be between 1 and 1024");
        }
        if self.max_concurrency == 0 || self.max_concurrency > 1024 {
            bail!("CONCORD_MAX_CONCURRENCY / --max-concurrency must be between 1 and 1024");
        }
        if self.lease_ttl_ms < 1000 {
            bail!("CONCORD_LEASE_TTL_MS / --lease-ttl-ms must be at least 1000");
        }
        match (&self.role, &self.redis_url) {
            (None, Some(_)) => bail!(
                "CONCORD_REDIS_URL / --redis-url is for the cluster roles (concord api|router|shard|cluster); the all-in-one server needs no Redis"
            ),
            (Some(_), None) => bail!("CONCORD_REDIS_URL / --redis-url is required by the cluster roles"),
            _ => {}
        }
        if self.heartbeat_interval_ms < 1000 {
            bail!("CONCORD_HEARTBEAT_INTERVAL_MS / --heartbeat-interval-ms must be at least 1000");
        }
        if let Some(url) = &self.database_url {
            if !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
            {
                bail!(
                    "CONCORD_DATABASE_URL / --database-url must start with sqlite: or postgres://"
                );
            }
        }
        if let Some(secret) = &self.token_secret {
            if secret.0.len() < 32 {
                bail!("CONCORD_TOKEN_SECRET must be at least 32 bytes");
            }
        }
        Ok(())
    }

    /// The node ordinal of a shard process: `--node-id`, else the `-N` suffix of `$HOSTNAME`.
    ///
    /// # Errors
    /// When neither gives one.
    pub fn node_id(&self) -> anyhow::Result<u16> {
        if let Some(id) = self.node_id {
            return Ok(id);
        }
        let host = std::env::var("HOSTNAME").unwrap_or_default();
        host.rsplit_once('-')
            .and_then(|(_, n)| n.parse().ok())
            .with_context(|| {
                format!("CONCORD_NODE_ID / --node-id is not set and HOSTNAME ({host:?}) has no -N ordinal")
            })
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("concord.db").display()))
    }

    /// The gateway URL advertised to clients.
    pub fn gateway_url(&self, bound: SocketAddr) -> String {
        self.public_gateway_url
            .clone()
            .unwrap_or_else(|| format!("ws://{bound}"))
    }

    /// Loads the token secret: the variable, else the file, else one generated once in the data
    /// directory (readable by the owner only) so tokens survive restarts.
    ///
    /// # Errors
    /// When the file cannot be read or created, or holds fewer than 32 bytes.
    pub fn token_secret(&self) -> anyhow::Result<Vec<u8>> {
        if let Some(secret) = &self.token_secret {
            return Ok(secret.0.as_bytes().to_vec());
        }
        let path = match &self.token_secret_file {
            Some(p) => p.clone(),
            None => {
                let path = self.data_dir.join("token.secret");
                if !path.exists() {
                    write_new_secret(&path)?;
                }
                path
            }
        };
        let bytes = std::fs::read(&path)
            .with_context(|| format!("reading token secret {}", path.display()))?;
        let trimmed = bytes.trim_ascii().to_vec();
        if trimmed.len() < 32 {
            bail!(
                "token secret file {} must hold at least 32 bytes",
                path.display()
            );
        }
        Ok(trimmed)
    }
}

fn write_new_secret(path: &std::path::Path) -> anyhow::Result<()> {
    use rand::RngCore;
    use std::io::Write;
    let mut raw = [0u8; 48];
    rand::thread_rng().fill_bytes(&mut raw);
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating token secret {}", path.display()))?;
    file.write_all(hex.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        let mut all = vec!["concord"];
        all.extend_from_slice(args);
        Config::try_parse_from(all).unwrap()
    }

    #[test]
    fn defaults_are_valid() {
        let c = parse(&[]);
        c.validate().unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.shards, DEFAULT_SHARDS);
        assert!(c.database_url().starts_with("sqlite://"));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = parse(&["--shards", "0"])
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("CONCORD_SHARDS"), "{err}");
        let err = parse(&["--database-url", "mysql://x"])
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("CONCORD_DATABASE_URL"), "{err}");
        let err = parse(&["--token-secret", "short"])
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("CONCORD_TOKEN_SECRET"), "{err}");
    }

    #[test]
    fn secrets_never_print() {
        let c = parse(&["--token-secret", "0123456789abcdef0123456789abcdef-secret"]);
        let shown = format!("{c:?}");
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
    }

    #[test]
    fn generated_secret_persists() {
        let dir = std::env::temp_dir().join(format!("concord-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let c = parse(&["--data-dir", dir.to_str().unwrap()]);
        let a = c.token_secret().unwrap();
        let b = c.token_secret().unwrap();
        assert_eq!(a, b);
        assert!(a.len() >= 32);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
