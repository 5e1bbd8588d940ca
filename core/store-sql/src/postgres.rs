//! The PostgreSQL backend (cluster mode).

use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use crate::error::Result;

/// Connections per process; several API and gateway processes share one server.
const MAX_CONNECTIONS: u32 = 10;

/// [`concord_core::repo::Store`] over a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

mod sql {
    crate::statements::define_statements!(sqlx::Postgres);
}

crate::store::impl_store!(PgStore, sql);

impl PgStore {
    /// Connects to `url` (`postgres://…`) and migrates the database.
    ///
    /// # Errors
    /// When the URL is malformed, the server is unreachable, or a migration fails.
    pub async fn connect(url: &str) -> Result<Self> {
        // A first start on a fresh server creates the database, like the SQLite file is created.
        // Processes of a cluster start together: one of two racing creators loses with a
        // duplicate, after which the database exists, which is all either wanted.
        if !sqlx::Postgres::database_exists(url).await? {
            if let Err(error) = sqlx::Postgres::create_database(url).await {
                if !sqlx::Postgres::database_exists(url).await? {
                    return Err(error.into());
                }
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect(url)
            .await?;
        sqlx::migrate!("../../migrations/postgres")
            .run(&pool)
            .await?;
        Ok(Self { pool })
    }

    /// Wraps an already migrated pool.
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }
}
