//! Scratch databases for integration tests (feature `test-util`).

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{Connection, PgConnection};

/// Server used when `CONCORD_TEST_POSTGRES_URL` is unset.
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Creates an empty database `concord_test_<random hex>` on the server named by
/// `CONCORD_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`) and returns
/// its URL. Databases are left behind; the prefix makes them easy to drop.
///
/// # Panics
/// When the server is unreachable or refuses `CREATE DATABASE`.
pub async fn scratch_postgres_url() -> String {
    let admin_url = std::env::var("CONCORD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    let name = format!("concord_test_{:016x}", rand::random::<u64>());
    let mut conn = PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", crate::redacted(&admin_url)));
    // The name is generated above from hex digits only, so formatting it into the SQL is safe.
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("create database {name}: {e}"));
    conn.close().await.ok();
    with_database(&admin_url, &name)
}

/// A fresh `sqlite://` URL for a file under the system temp directory that does not exist yet.
pub fn scratch_sqlite_url() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let file = format!(
        "concord-test-{}-{}-{:08x}.db",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    );
    format!("sqlite://{}", std::env::temp_dir().join(file).display())
}

/// `url` with its database (path) replaced by `database`, keeping any query string.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    format!("{}/{database}{query}", &base[..authority_end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_is_swapped() {
        assert_eq!(
            with_database("postgres://p@h:5432/postgres", "x"),
            "postgres://p@h:5432/x"
        );
        assert_eq!(with_database("postgres://p@h", "x"), "postgres://p@h/x");
        assert_eq!(
            with_database("postgres://p@h/db?sslmode=disable", "x"),
            "postgres://p@h/x?sslmode=disable"
        );
    }

    #[test]
    fn sqlite_urls_are_unique() {
        assert_ne!(scratch_sqlite_url(), scratch_sqlite_url());
        assert!(scratch_sqlite_url().starts_with("sqlite://"));
    }
}
