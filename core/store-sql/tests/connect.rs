//! Opening stores: schemes, file creation, re-opening and pragmas.

use concord_core::id::Id;
use concord_store_sql::test_util::{scratch_postgres_url, scratch_sqlite_url};
use concord_store_sql::Error;
use sqlx::{Connection, SqliteConnection};

use crate::common::new_user;

#[tokio::test]
async fn rejects_unknown_scheme() {
    let err = concord_store_sql::connect("mysql://root@localhost/db")
        .await
        .err();
    assert!(
        matches!(err, Some(Error::UnsupportedScheme(ref s)) if s == "mysql"),
        "{err:?}"
    );
    let err = concord_store_sql::connect("/tmp/plain-path.db").await.err();
    assert!(matches!(err, Some(Error::UnsupportedScheme(_))), "{err:?}");
}

#[tokio::test]
async fn sqlite_file_is_created_migrated_and_reopened() {
    let url = scratch_sqlite_url();
    let path = url
        .strip_prefix("sqlite://")
        .expect("sqlite url")
        .to_owned();
    assert!(!std::path::Path::new(&path).exists());

    let store = concord_store_sql::connect(&url).await.expect("first open");
    assert!(std::path::Path::new(&path).exists());
    store.ping().await.expect("ping");
    store
        .insert_user(&new_user(1, "alice"))
        .await
        .expect("insert");
    drop(store);

    // Migrations are recorded, so a second open applies nothing and keeps the data.
    let store = concord_store_sql::connect(&url).await.expect("second open");
    let user = store
        .current_user(Id::new(1))
        .await
        .expect("read")
        .expect("persisted");
    assert_eq!(user.user.username, "alice");

    let mut conn = SqliteConnection::connect(&url).await.expect("raw");
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .expect("pragma");
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn postgres_is_migrated_and_reopened() {
    let url = scratch_postgres_url().await;
    assert!(url.contains("/concord_test_"), "{url}");
    let store = concord_store_sql::connect(&url).await.expect("first open");
    store.ping().await.expect("ping");
    store
        .insert_user(&new_user(1, "alice"))
        .await
        .expect("insert");
    drop(store);
    let store = concord_store_sql::connect(&url).await.expect("second open");
    assert!(store
        .current_user(Id::new(1))
        .await
        .expect("read")
        .is_some());
}

#[tokio::test]
async fn sqlite_in_memory_keeps_one_database() {
    let store = concord_store_sql::connect("sqlite::memory:")
        .await
        .expect("open");
    store
        .insert_user(&new_user(1, "alice"))
        .await
        .expect("insert");
    // Concurrent reads would open further connections, each a new empty database, if the pool
    // allowed them.
    let reads: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .current_user(Id::new(1))
                    .await
                    .expect("read")
                    .is_some()
            })
        })
        .collect();
    for read in reads {
        assert!(read.await.expect("join"));
    }
}
