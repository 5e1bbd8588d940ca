//! Fixtures shared by the conformance tests.

use std::sync::Arc;

use concord_core::id::{ChannelId, GuildId, Id, MessageId, UserId};
use concord_core::model::channel::{Channel, ChannelType};
use concord_core::permissions::Permissions;
use concord_core::repo::{NewGuild, NewMessage, NewUser, Store};
use concord_core::timestamp::Timestamp;
use concord_store_sql::test_util::{scratch_postgres_url, scratch_sqlite_url};
use sqlx::{Connection, PgConnection, SqliteConnection};

/// A migrated store plus raw access to its database, for rows the traits cannot write (roles)
/// and for checking cascades.
pub struct Ctx {
    pub store: Arc<dyn Store>,
    pub url: String,
}

impl Ctx {
    pub async fn sqlite() -> Self {
        Self::open(scratch_sqlite_url()).await
    }

    pub async fn postgres() -> Self {
        Self::open(scratch_postgres_url().await).await
    }

    async fn open(url: String) -> Self {
        let store = concord_store_sql::connect(&url).await.expect("connect");
        Self { store, url }
    }

    /// Runs one literal statement outside the store.
    pub async fn exec(&self, sql: &str) {
        if self.url.starts_with("sqlite:") {
            let mut conn = SqliteConnection::connect(&self.url)
                .await
                .expect("raw sqlite");
            sqlx::query(sql).execute(&mut conn).await.expect(sql);
        } else {
            let mut conn = PgConnection::connect(&self.url)
                .await
                .expect("raw postgres");
            sqlx::query(sql).execute(&mut conn).await.expect(sql);
        }
    }

    /// `SELECT COUNT(*) FROM <from_where>`.
    pub async fn count(&self, from_where: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {from_where}");
        if self.url.starts_with("sqlite:") {
            let mut conn = SqliteConnection::connect(&self.url)
                .await
                .expect("raw sqlite");
            sqlx::query_scalar(&sql)
                .fetch_one(&mut conn)
                .await
                .expect("count")
        } else {
            let mut conn = PgConnection::connect(&self.url)
                .await
                .expect("raw postgres");
            sqlx::query_scalar(&sql)
                .fetch_one(&mut conn)
                .await
                .expect("count")
        }
    }

    /// Inserts a plain user `name` with id `id` and returns the id.
    pub async fn user(&self, id: u64, name: &str) -> UserId {
        self.store
            .insert_user(&new_user(id, name))
            .await
            .expect("insert user");
        Id::new(id)
    }

    /// Creates guild `id` owned by `owner` with a category `id + 1` holding a text channel `id + 2`
    /// (the system channel).
    pub async fn guild(&self, id: u64, owner: UserId) -> GuildId {
        self.store
            .create_guild(&new_guild(id, owner))
            .await
            .expect("create guild");
        Id::new(id)
    }

    /// Inserts a plain message.
    pub async fn message(
        &self,
        id: u64,
        channel: ChannelId,
        author: UserId,
        content: &str,
    ) -> MessageId {
        self.store
            .insert_message(&new_message(id, channel, author, content))
            .await
            .expect("insert message");
        Id::new(id)
    }

    /// Inserts a role row directly (no trait method creates roles yet).
    pub async fn role(&self, id: u64, guild: GuildId, name: &str, position: i64) {
        self.exec(&format!(
            "INSERT INTO role (role_id, guild_id, name, permissions, position, created_at) \
             VALUES ({id}, {guild}, '{name}', 8, {position}, 0)"
        ))
        .await;
    }

    /// Gives a member a role directly.
    pub async fn grant(&self, guild: GuildId, user: UserId, role: u64) {
        self.exec(&format!(
            "INSERT INTO member_role (guild_id, user_id, role_id) VALUES ({guild}, {user}, {role})"
        ))
        .await;
    }
}

pub fn new_user(id: u64, name: &str) -> NewUser {
    NewUser {
        bot: false,
        discriminator: "0".to_owned(),
        email: Some(format!("{name}@example.com")),
        id: Id::new(id),
        password_hash: Some(format!("hash-of-{name}")),
        username: name.to_owned(),
    }
}

pub fn channel(
    id: u64,
    guild: u64,
    kind: ChannelType,
    name: &str,
    position: i64,
    parent: Option<u64>,
) -> Channel {
    Channel {
        flags: 0,
        guild_id: Some(Id::new(guild)),
        id: Id::new(id),
        kind,
        last_message_id: None,
        name: name.to_owned(),
        nsfw: false,
        parent_id: parent.map(Id::new),
        permission_overwrites: Vec::new(),
        position,
        rate_limit_per_user: 0,
        topic: None,
    }
}

pub const GUILD_CREATED_AT: Timestamp = Timestamp::from_unix_micros(1_700_000_000_123_456);

pub fn new_guild(id: u64, owner: UserId) -> NewGuild {
    NewGuild {
        channels: vec![
            channel(
                id + 1,
                id,
                ChannelType::GuildCategory,
                "Text Channels",
                0,
                None,
            ),
            channel(
                id + 2,
                id,
                ChannelType::GuildText,
                "general",
                0,
                Some(id + 1),
            ),
        ],
        everyone_permissions: Permissions::DEFAULT_EVERYONE,
        id: Id::new(id),
        name: format!("guild {id}"),
        owner_id: owner,
        system_channel_id: Some(Id::new(id + 2)),
        created_at: GUILD_CREATED_AT,
    }
}

pub fn new_message(id: u64, channel: ChannelId, author: UserId, content: &str) -> NewMessage {
    NewMessage {
        author_id: author,
        channel_id: channel,
        content: content.to_owned(),
        guild_id: None,
        id: Id::new(id),
        kind: 0,
        mention_everyone: false,
        mention_roles: Vec::new(),
        mentions: Vec::new(),
        nonce: None,
        referenced_message_id: None,
        tts: false,
    }
}

/// Raw id values, for comparing lists.
pub fn raw<M>(ids: impl IntoIterator<Item = Id<M>>) -> Vec<u64> {
    ids.into_iter().map(Id::get).collect()
}

/// Generates `sqlite::<test>` and `postgres::<test>` for each `async fn <test>(ctx: Ctx)` given.
macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test($crate::common::Ctx::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test($crate::common::Ctx::postgres().await).await;
                }
            )*
        }
    };
}
pub(crate) use conformance;
