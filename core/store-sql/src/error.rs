//! The crate's error type.

use concord_core::repo::{constraint, RepoError};

/// Failure opening, migrating or reading the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL names a database this crate does not speak.
    #[error("unsupported database url scheme `{0}` (expected sqlite:// or postgres://)")]
    UnsupportedScheme(String),
    /// Driver, connection or query failure.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the embedded migrations failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A JSON column holds text this version cannot read.
    #[error("stored json: {0}")]
    Json(#[from] serde_json::Error),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for RepoError {
    fn from(err: Error) -> Self {
        if let Error::Database(db) = &err {
            if let Some(name) = known_unique_violation(db) {
                return RepoError::Conflict(name);
            }
        }
        RepoError::Backend(Box::new(err))
    }
}

/// Name of the violated unique constraint when callers translate it.
///
/// PostgreSQL reports the constraint name; SQLite only says
/// `UNIQUE constraint failed: <table>.<column>`, so the table and column pick the name there.
fn known_unique_violation(err: &sqlx::Error) -> Option<&'static str> {
    let db = err.as_database_error()?;
    if !db.is_unique_violation() {
        return None;
    }
    if let Some(name) = db.constraint() {
        return [
            constraint::USER_USERNAME,
            constraint::USER_EMAIL,
            constraint::INVITE_CODE,
        ]
        .into_iter()
        .find(|known| *known == name);
    }
    let columns = db.message().strip_prefix("UNIQUE constraint failed: ")?;
    match columns {
        "user.username" => Some(constraint::USER_USERNAME),
        "user.email" => Some(constraint::USER_EMAIL),
        "invite.code" => Some(constraint::INVITE_CODE),
        _ => None,
    }
}
