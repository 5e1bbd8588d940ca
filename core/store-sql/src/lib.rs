//! Concord storage: the [`concord_core::repo`] traits over SQLite and PostgreSQL.
//!
//! One crate serves both backends with runtime-checked `sqlx::query`/`query_as`/`query_scalar`
//! (STYLE.md guideline 3, fallback): compile-checked macros bind to one database per crate and
//! would need a live database or offline data at build time. To keep the SQL written once:
//!
//! - `statements` holds every statement as one function named for what it does, inside the
//!   `define_statements!` macro, which `sqlite` and `postgres` expand for their `sqlx::Database`.
//!   The text is shared verbatim: `$N` placeholders (SQLite accepts them), BIGINT for ids (see
//!   [`Id::to_i64`](concord_core::id::Id::to_i64)), timestamps as unix microseconds and flags,
//!   BOOLEAN for booleans, JSON text for small embedded lists.
//! - `row` holds the row types (generic `sqlx::FromRow`) and their conversion into wire objects;
//!   `assemble` joins rows read by several statements (roles into guilds, reactions into
//!   messages).
//! - `store` expands the trait implementations once per backend ([`SqliteStore`], [`PgStore`]).
//!
//! Migrations live in `migrations/sqlite` and `migrations/postgres` at the repository root and
//! are embedded and applied by [`connect`].

mod assemble;
mod error;
mod postgres;
mod row;
mod sqlite;
mod statements;
mod store;
#[cfg(feature = "test-util")]
pub mod test_util;

use std::sync::Arc;

use concord_core::repo::Store;

pub use crate::error::{Error, Result};
pub use crate::postgres::PgStore;
pub use crate::sqlite::SqliteStore;

/// Opens the database named by `database_url`, applies pending migrations and returns the store.
///
/// `sqlite://path` (the file is created when missing; WAL, foreign keys on) or
/// `postgres://…` / `postgresql://…`.
///
/// # Errors
/// [`Error::UnsupportedScheme`] for any other URL; connection and migration failures otherwise.
pub async fn connect(database_url: &str) -> Result<Arc<dyn Store>> {
    let scheme = database_url
        .split_once(':')
        .map_or(database_url, |(scheme, _)| scheme);
    match scheme {
        "sqlite" => Ok(Arc::new(SqliteStore::connect(database_url).await?)),
        "postgres" | "postgresql" => Ok(Arc::new(PgStore::connect(database_url).await?)),
        other => Err(Error::UnsupportedScheme(other.to_owned())),
    }
}

/// `database_url` with any password replaced by `***`, for logs.
pub fn redacted(database_url: &str) -> String {
    let Some((scheme, rest)) = database_url.split_once("://") else {
        return database_url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => database_url.to_owned(),
        },
        None => database_url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password_only() {
        assert_eq!(
            redacted("postgres://u:secret@h:5432/db?x=1"),
            "postgres://u:***@h:5432/db?x=1"
        );
        assert_eq!(redacted("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redacted("sqlite:///tmp/a.db"), "sqlite:///tmp/a.db");
    }

    #[tokio::test]
    async fn rejects_other_schemes() {
        let err = connect("mysql://localhost/db")
            .await
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("unsupported database url scheme `mysql` (expected sqlite:// or postgres://)")
        );
    }
}
