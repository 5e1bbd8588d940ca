//! Every SQL statement of the store, one function each, written once for both backends.
//!
//! [`define_statements!`] expands to a module body of plain async functions for one concrete
//! `sqlx::Database`; `sqlite.rs` and `postgres.rs` each instantiate it. The SQL text is identical
//! on both backends: `$N` placeholders (SQLite accepts them), `"user"` quoted (reserved in
//! PostgreSQL), BIGINT for every number and no backend-specific functions. Each function takes any
//! executor, so the same statement runs on the pool or inside a transaction.

/// `$first, $first+1, …` for an `IN (…)` list of `count` binds.
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    let mut out = String::with_capacity(count * 5);
    for n in first..first + count {
        if n != first {
            out.push_str(", ");
        }
        out.push('$');
        out.push_str(&n.to_string());
    }
    out
}

/// Largest `IN (…)` list sent at once; well under SQLite's and PostgreSQL's bind limits.
pub(crate) const MAX_IN_LIST: usize = 500;

/// Guild columns read into [`crate::row::GuildRow`], from alias `g`.
macro_rules! guild_columns {
    () => {
        "g.guild_id, g.name, g.owner_id, g.icon, g.banner, g.splash, g.discovery_splash, g.description, \
         g.afk_channel_id, g.afk_timeout, g.system_channel_id, g.system_channel_flags, g.rules_channel_id, \
         g.public_updates_channel_id, g.safety_alerts_channel_id, g.verification_level, \
         g.default_message_notifications, g.explicit_content_filter, g.mfa_level, g.nsfw_level, \
         g.preferred_locale, g.premium_progress_bar_enabled, g.vanity_url_code, g.features"
    };
}
pub(crate) use guild_columns;

/// Role columns read into [`crate::row::RoleRow`].
macro_rules! role_columns {
    () => {
        "guild_id, role_id, name, permissions, position, color, hoist, mentionable, icon, unicode_emoji, flags"
    };
}
pub(crate) use role_columns;

/// Member columns read into [`crate::row::MemberRow`], from aliases `m` (member) and `u` (user).
macro_rules! member_columns {
    () => {
        concat!(
            "m.nick, m.avatar as member_avatar, m.joined_at, m.premium_since, m.communication_disabled_until, \
             m.deaf, m.mute, m.pending, m.flags as member_flags, ",
            $crate::row::user_columns!()
        )
    };
}
pub(crate) use member_columns;

/// Channel columns read into [`crate::row::ChannelRow`], from table `channel` (unaliased).
///
/// `last_message_id` is derived from the `(channel_id, message_id)` index rather than stored: a
/// stored copy cost every message POST an UPDATE of its channel's row, which also serialised
/// concurrent posts to one channel on that row's lock.
macro_rules! channel_columns {
    () => {
        "channel_id, guild_id, kind, name, topic, position, nsfw, parent_id, rate_limit_per_user, flags, \
         (select max(message.message_id) from message where message.channel_id = channel.channel_id) \
         as last_message_id, permission_overwrites"
    };
}
pub(crate) use channel_columns;

/// Message columns read into [`crate::row::MessageRow`], from aliases `m` (message) and `u` (author).
macro_rules! message_columns {
    () => {
        concat!(
            "m.message_id, m.channel_id, m.guild_id, m.content, m.kind, m.tts, m.mention_everyone, m.nonce, \
             m.referenced_message_id, m.pinned, m.flags as message_flags, m.edited_at, ",
            $crate::row::user_columns!()
        )
    };
}
pub(crate) use message_columns;

/// Expands to the statement functions for one backend (`$db`: `sqlx::Sqlite` or `sqlx::Postgres`).
macro_rules! define_statements {
    ($db:ty) => {
        use concord_core::model::channel::Channel;
        use concord_core::repo::{GuildPatch, NewApplication, NewGuild, NewInvite, NewMessage, NewUser, UserPatch};
        use sqlx::Executor;


        use $crate::row::{
            ApplicationRow, ChannelRow, CurrentUserRow, GuildRow, InviteRow, MemberRow,
            MentionRow, MessageRow, ReactionCountRow, RoleRow, UserRow,
        };
        use $crate::statements::placeholders;

        /// Runs `sql`, whose `IN (…)` list has one placeholder per id from `$1`, with the ids bound.
        async fn fetch_in_list<'e, E, R>(ex: E, sql: &str, ids: &[i64]) -> $crate::Result<Vec<R>>
        where
            E: Executor<'e, Database = $db>,
            R: for<'r> sqlx::FromRow<'r, <$db as sqlx::Database>::Row> + Send + Unpin,
        {
            let mut query = sqlx::query_as(sql);
            for id in ids {
                query = query.bind(*id);
            }
            query.fetch_all(ex).await.map_err($crate::Error::from)
        }

        // ---- user ----

        pub(crate) async fn insert_user<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            user: &NewUser,
            now: i64,
        ) -> $crate::Result<()> {
            sqlx::query(
                "insert into \"user\" (user_id, username, email, discriminator, bot, password_hash, \
                 created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(user.id.to_i64())
            .bind(&user.username)
            .bind(user.email.as_deref())
            .bind(&user.discriminator)
            .bind(user.bot)
            .bind(user.password_hash.as_deref())
            .bind(now)
            .execute(ex)
            .await?;
            Ok(())
        }

        pub(crate) async fn select_current_user<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            user_id: i64,
        ) -> $crate::Result<Option<CurrentUserRow>> {
            sqlx::query_as(concat!(
                "select ",
                $crate::row::user_columns!(),
                ", u.email, u.flags, u.locale, u.verified from \"user\" u where u.user_id = $1"
            ))
            .bind(user_id)
            .fetch_optional(ex)
            .await
            .map_err($crate::Error::from)
        }

        /// At most [`MAX_IN_LIST`]($crate::statements::MAX_IN_LIST) ids per call.
        pub(crate) async fn select_users_by_id<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            user_ids: &[i64],
        ) -> $crate::Result<Vec<UserRow>> {
            let sql = format!(
                concat!("select ", $crate::row::user_columns!(), " from \"user\" u where u.user_id in ({})"),
                placeholders(1, user_ids.len())
            );
            fetch_in_list(ex, &sql, user_ids).await
        }

        /// Prefers a username match should a username equal another account's email.
        pub(crate) async fn select_credentials<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            login: &str,
        ) -> $crate::Result<Option<(i64, String)>> {
            sqlx::query_as(
                "select user_id, password_hash from \"user\" \
                 where (username = $1 or email = $1) and not bot and password_hash is not null \
                 order by case when username = $1 then 0 else 1 end limit 1",
            )
            .bind(login)
            .fetch_optional(ex)
            .await
            .map_err($crate::Error::from)
        }

        /// One statement, so concurrent patches of different fields do not overwrite each other.
        pub(crate) async fn update_user<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            user_id: i64,
            patch: &UserPatch,
            now: i64,
        ) -> $crate::Result<u64> {
            let result = sqlx::query(
                "update \"user\" set \
                 username = coalesce($2, username), \
                 avatar = case when $3 then $4 else avatar end, \
                 global_name = case when $5 then $6 else global_name end, \
                 updated_at = $7 \
                 where user_id = $1",
            )
            .bind(user_id)
            .bind(patch.username.as_deref())
            .bind(patch.avatar.is_some())
            .bind(patch.avatar.as_ref().and_then(|a| a.as_deref()))
            .bind(patch.global_name.is_some())
            .bind(patch.global_name.as_ref().and_then(|n| n.as_deref()))
            .bind(now)
            .execute(ex)
            .await?;
            Ok(result.rows_affected())
        }

        // ---- auth_token ----

        pub(crate) async fn insert_token<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            token_id: i64,
            user_id: i64,
            created_at: i64,
        ) -> $crate::Result<()> {
            sqlx::query("insert into auth_token (token_id, user_id, created_at) values ($1, $2, $3)")
                .bind(token_id)
                .bind(user_id)
                .bind(created_at)
                .execute(ex)
                .await?;
            Ok(())
        }

        pub(crate) async fn select_live_token<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            token_id: i64,
            user_id: i64,
        ) -> $crate::Result<Option<i64>> {
            sqlx::query_scalar("select token_id from auth_token where token_id = $1 and user_id = $2")
                .bind(token_id)
                .bind(user_id)
                .fetch_optional(ex)
                .await
                .map_err($crate::Error::from)
        }

        pub(crate) async fn delete_token<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            token_id: i64,
        ) -> $crate::Result<()> {
            sqlx::query("delete from auth_token where token_id = $1").bind(token_id).execute(ex).await?;
            Ok(())
        }

        pub(crate) async fn delete_user_tokens<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            user_id: i64,
        ) -> $crate::Result<()> {
            sqlx::query("delete from auth_token where user_id = $1").bind(user_id).execute(ex).await?;
            Ok(())
        }

        // ---- application ----

        pub(crate) async fn insert_application<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            app: &NewApplication,
            now: i64,
        ) -> $crate::Result<()> {
            sqlx::query(
                "insert into application (application_id, owner_id, name, flags, verify_key, created_at, \
                 updated_at) values ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(app.bot.id.to_i64())
            .bind(app.owner_id.to_i64())
            .bind(&app.name)
            .bind($crate::row::bits_to_db(app.flags))
            .bind(&app.verify_key)
            .bind(now)
            .execute(ex)
            .await?;
            Ok(())
        }

        pub(crate) async fn select_application<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            application_id: i64,
        ) -> $crate::Result<Option<ApplicationRow>> {
            sqlx::query_as(
                "select application_id, owner_id, name, flags, verify_key, description, icon, \
                 (select count(*) from member where member.user_id = application.application_id) as guild_count \
                 from application where application_id = $1",
            )
            .bind(application_id)
            .fetch_optional(ex)
            .await
            .map_err($crate::Error::from)
        }

        // ---- guild and role ----

        pub(crate) async fn insert_guild<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            guild: &NewGuild,
        ) -> $crate::Result<()> {
            sqlx::query(
                "insert into guild (guild_id, name, owner_id, system_channel_id, created_at, updated_at) \
                 values ($1, $2, $3, $4, $5, $5)",
            )
            .bind(guild.id.to_i64())
            .bind(&guild.name)
            .bind(guild.owner_id.to_i64())
            .bind(guild.system_channel_id.map(|c| c.to_i64()))
            .bind(guild.created_at.unix_micros())
            .execute(ex)
            .await?;
            Ok(())
        }

        pub(crate) async fn insert_role<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            role_id: i64,
            guild_id: i64,
            name: &str,
            permissions: i64,
            position: i64,
            created_at: i64,
        ) -> $crate::Result<()> {
            sqlx::query(
                "insert into role (role_id, guild_id, name, permissions, position, created_at) \
                 values ($1, $2, $3, $4, $5, $6)",
            )
            .bind(role_id)
            .bind(guild_id)
            .bind(name)
            .bind(permissions)
            .bind(position)
            .bind(created_at)
            .execute(ex)
            .await?;
            Ok(())
        }

        pub(crate) async fn select_guild<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            guild_id: i64,
        ) -> $crate::Result<Option<GuildRow>> {
            sqlx::query_as(concat!("select ", $crate::statements::guild_columns!(), " from guild g where g.guild_id = $1"))
                .bind(guild_id)
                .fetch_optional(ex)
                .await
                .map_err($crate::Error::from)
        }

        /// Roles of the given guilds (at most `MAX_IN_LIST`), by guild, position, id.
        pub(crate) async fn select_guild_roles<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            guild_ids: &[i64],
        ) -> $crate::Result<Vec<RoleRow>> {
            let sql = format!(
                concat!(
                    "select ",
                    $crate::statements::role_columns!(),
                    " from role where guild_id in ({}) order by guild_id, position, role_id"
                ),
                placeholders(1, guild_ids.len())
            );
            fetch_in_list(ex, &sql, guild_ids).await
        }

        /// One statement; `CASE WHEN $flag` distinguishes "leave alone" from "set to NULL".
        pub(crate) async fn update_guild<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            guild_id: i64,
            patch: &GuildPatch,
            now: i64,
        ) -> $crate::Result<u64> {
            let result = sqlx::query(
                "update guild set \
                 afk_channel_id = case when $2 then $3 else afk_channel_id end, \
                 afk_timeout = coalesce($4, afk_timeout), \
                 default_message_notifications = coalesce($5, default_message_notifications), \
                 description = case when $6 then $7 else description end, \
                 explicit_content_filter = coalesce($8, explicit_content_filter), \
                 name = coalesce($9, name), \
                 owner_id = coalesce($10, owner_id), \
                 preferred_locale = coalesce($11, preferred_locale), \
                 system_channel_id = case when $12 then $13 else system_channel_id end, \
                 verification_level = coalesce($14, verification_level), \
                 updated_at = $15 \
                 where guild_id = $1",
            )
            .bind(guild_id)
            .bind(patch.afk_channel_id.is_some())
            .bind(patch.afk_channel_id.flatten().map(|c| c.to_i64()))
            .bind(patch.afk_timeout.map(i64::from))
            .bind(patch.default_message_notifications.map(i64::from))
            .bind(patch.description.is_some())
            .bind(patch.description.as_ref().and_then(|d| d.as_deref()))
            .bind(patch.explicit_content_filter.map(i64::from))
            .bind(patch.name.as_deref())
            .bind(patch.owner_id.map(|o| o.to_i64()))
            .bind(patch.preferred_locale.as_deref())
            .bind(patch.system_channel_id.is_some())
            .bind(patch.system_channel_id.flatten().map(|c| c.to_i64()))
            .bind(patch.verification_level.map(i64::from))
            .bind(now)
            .execute(ex)
            .await?;
            Ok(result.rows_affected())
        }

        /// Roles, members, channels, messages and invites go with it by `ON DELETE CASCADE`.
        pub(crate) async fn delete_guild<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            guild_id: i64,
        ) -> $crate::Result<u64> {
            let result =
                sqlx::query("delete from guild where guild_id = $1").bind(guild_id).execute(ex).await?;
            Ok(result.rows_affected())
        }

        pub(crate) async fn select_user_guilds<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            user_id: i64,
            before: Option<i64>,
            after: Option<i64>,
            limit: i64,
        ) -> $crate::Result<Vec<GuildRow>> {
            sqlx::query_as(concat!(
                "select ",
                $crate::statements::guild_columns!(),
                " from member mb join guild g on g.guild_id = mb.guild_id \
                 where mb.user_id = $1 and ($2 is null or mb.guild_id < $2) and ($3 is null or mb.guild_id > $3) \
                 order by mb.guild_id limit $4"
            ))
            .bind(user_id)
            .bind(before)
            .bind(after)
            .bind(limit)
            .fetch_all(ex)
            .await
            .map_err($crate::Error::from)
        }

        pub(crate) async fn select_user_guild_ids<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            user_id: i64,
        ) -> $crate::Result<Vec<i64>> {
            sqlx::query_scalar("select guild_id from member where user_id = $1 order by guild_id")
                .bind(user_id)
                .fetch_all(ex)
                .await
                .map_err($crate::Error::from)
        }

        // ---- member ----

        pub(crate) async fn insert_member<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            guild_id: i64,
            user_id: i64,
            joined_at: i64,
        ) -> $crate::Result<u64> {
            let result = sqlx::query(
                "insert into member (guild_id, user_id, joined_at) values ($1, $2, $3) \
                 on conflict (guild_id, user_id) do nothing",
            )
            .bind(guild_id)
            .bind(user_id)
            .bind(joined_at)
            .execute(ex)
            .await?;
            Ok(result.rows_affected())
        }

        /// The member's roles go with it by `ON DELETE CASCADE`.
        pub(crate) async fn delete_member<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            guild_id: i64,
            user_id: i64,
        ) -> $crate::Result<u64> {
            let result = sqlx::query("delete from member where guild_id = $1 and user_id = $2")
                .bind(guild_id)
                .bind(user_id)
                .execute(ex)
                .await?;
            Ok(result.rows_affected())
        }

        pub(crate) async fn select_member<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            guild_id: i64,
            user_id: i64,
        ) -> $crate::Result<Option<MemberRow>> {
            sqlx::query_as(concat!(
                "select ",
                $crate::statements::member_columns!(),
                " from member m join \"user\" u on u.user_id = m.user_id \
                 where m.guild_id = $1 and m.user_id = $2"
            ))
            .bind(guild_id)
            .bind(user_id)
            .fetch_optional(ex)
            .await
            .map_err($crate::Error::from)
        }

        pub(crate) async fn select_members<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            guild_id: i64,
            after: Option<i64>,
            limit: i64,
        ) -> $crate::Result<Vec<MemberRow>> {
            sqlx::query_as(concat!(
                "select ",
                $crate::statements::member_columns!(),
                " from member m join \"user\" u on u.user_id = m.user_id \
                 where m.guild_id = $1 and ($2 is null or m.user_id > $2) order by m.user_id limit $3"
            ))
            .bind(guild_id)
            .bind(after)
            .bind(limit)
            .fetch_all(ex)
            .await
            .map_err($crate::Error::from)
        }

        /// `(user_id, role_id)` pairs for some members (at most `MAX_IN_LIST`) of one guild.
        pub(crate) async fn select_member_role_pairs<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            guild_id: i64,
            user_ids: &[i64],
        ) -> $crate::Result<Vec<(i64, i64)>> {
            let sql = format!(
                "select user_id, role_id from member_role where guild_id = $1 and user_id in ({}) \
                 order by user_id, role_id",
                placeholders(2, user_ids.len())
            );
            let mut query = sqlx::query_as(&sql).bind(guild_id);
            for id in user_ids {
                query = query.bind(*id);
            }
            query.fetch_all(ex).await.map_err($crate::Error::from)
        }

        /// No rows: not a member; one row with NULL: a member without roles.
        pub(crate) async fn select_member_role_ids<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            guild_id: i64,
            user_id: i64,
        ) -> $crate::Result<Vec<Option<i64>>> {
            sqlx::query_scalar(
                "select mr.role_id from member m left join member_role mr \
                 on mr.guild_id = m.guild_id and mr.user_id = m.user_id \
                 where m.guild_id = $1 and m.user_id = $2 order by mr.role_id",
            )
            .bind(guild_id)
            .bind(user_id)
            .fetch_all(ex)
            .await
            .map_err($crate::Error::from)
        }

        pub(crate) async fn count_members<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            guild_id: i64,
        ) -> $crate::Result<i64> {
            sqlx::query_scalar("select count(*) from member where guild_id = $1")
                .bind(guild_id)
                .fetch_one(ex)
                .await
                .map_err($crate::Error::from)
        }

        // ---- channel ----

        pub(crate) async fn insert_channel<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            channel: &Channel,
            overwrites_json: &str,
            now: i64,
        ) -> $crate::Result<()> {
            sqlx::query(
                "insert into channel (channel_id, guild_id, kind, name, topic, position, nsfw, parent_id, \
                 rate_limit_per_user, flags, permission_overwrites, created_at, updated_at) \
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
            )
            .bind(channel.id.to_i64())
            .bind(channel.guild_id.map(|g| g.to_i64()))
            .bind(i64::from(u8::from(channel.kind)))
            .bind(&channel.name)
            .bind(channel.topic.as_deref())
            .bind(channel.position)
            .bind(channel.nsfw)
            .bind(channel.parent_id.map(|p| p.to_i64()))
            .bind(i64::from(channel.rate_limit_per_user))
            .bind($crate::row::bits_to_db(channel.flags))
            .bind(overwrites_json)
            .bind(now)
            .execute(ex)
            .await?;
            Ok(())
        }

        pub(crate) async fn select_channel<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            channel_id: i64,
        ) -> $crate::Result<Option<ChannelRow>> {
            sqlx::query_as(concat!("select ", $crate::statements::channel_columns!(), " from channel where channel_id = $1"))
                .bind(channel_id)
                .fetch_optional(ex)
                .await
                .map_err($crate::Error::from)
        }

        pub(crate) async fn select_guild_channels<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            guild_id: i64,
        ) -> $crate::Result<Vec<ChannelRow>> {
            sqlx::query_as(concat!(
                "select ",
                $crate::statements::channel_columns!(),
                " from channel where guild_id = $1 order by position, channel_id"
            ))
            .bind(guild_id)
            .fetch_all(ex)
            .await
            .map_err($crate::Error::from)
        }

        /// Writes the mutable fields; the guild and `last_message_id` are not the caller's to change.
        pub(crate) async fn update_channel<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            channel: &Channel,
            overwrites_json: &str,
            now: i64,
        ) -> $crate::Result<u64> {
            let result = sqlx::query(
                "update channel set kind = $2, name = $3, topic = $4, position = $5, nsfw = $6, \
                 parent_id = $7, rate_limit_per_user = $8, flags = $9, permission_overwrites = $10, \
                 updated_at = $11 where channel_id = $1",
            )
            .bind(channel.id.to_i64())
            .bind(i64::from(u8::from(channel.kind)))
            .bind(&channel.name)
            .bind(channel.topic.as_deref())
            .bind(channel.position)
            .bind(channel.nsfw)
            .bind(channel.parent_id.map(|p| p.to_i64()))
            .bind(i64::from(channel.rate_limit_per_user))
            .bind($crate::row::bits_to_db(channel.flags))
            .bind(overwrites_json)
            .bind(now)
            .execute(ex)
            .await?;
            Ok(result.rows_affected())
        }

        /// Guild columns naming channels have no foreign key (see the migration), so a deleted
        /// channel is cleared from them here, as Discord does.
        pub(crate) async fn clear_guild_channel_refs<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            channel_id: i64,
        ) -> $crate::Result<()> {
            sqlx::query(
                "update guild set \
                 afk_channel_id = case when afk_channel_id = $1 then null else afk_channel_id end, \
                 system_channel_id = case when system_channel_id = $1 then null else system_channel_id end, \
                 rules_channel_id = case when rules_channel_id = $1 then null else rules_channel_id end, \
                 public_updates_channel_id = \
                     case when public_updates_channel_id = $1 then null else public_updates_channel_id end, \
                 safety_alerts_channel_id = \
                     case when safety_alerts_channel_id = $1 then null else safety_alerts_channel_id end \
                 where guild_id = (select guild_id from channel where channel_id = $1)",
            )
            .bind(channel_id)
            .execute(ex)
            .await?;
            Ok(())
        }

        /// Messages and invites go by `ON DELETE CASCADE`; children lose their parent by
        /// `ON DELETE SET NULL`.
        pub(crate) async fn delete_channel<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            channel_id: i64,
        ) -> $crate::Result<u64> {
            let result = sqlx::query("delete from channel where channel_id = $1")
                .bind(channel_id)
                .execute(ex)
                .await?;
            Ok(result.rows_affected())
        }

        // ---- message ----

        pub(crate) async fn insert_message<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            message: &NewMessage,
        ) -> $crate::Result<()> {
            sqlx::query(
                "insert into message (message_id, channel_id, guild_id, author_id, content, kind, tts, \
                 mention_everyone, nonce, referenced_message_id) \
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(message.id.to_i64())
            .bind(message.channel_id.to_i64())
            .bind(message.guild_id.map(|g| g.to_i64()))
            .bind(message.author_id.to_i64())
            .bind(&message.content)
            .bind(i64::from(message.kind))
            .bind(message.tts)
            .bind(message.mention_everyone)
            .bind(message.nonce.as_deref())
            .bind(message.referenced_message_id.map(|m| m.to_i64()))
            .execute(ex)
            .await?;
            Ok(())
        }

        pub(crate) async fn insert_message_mention<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            message_id: i64,
            user_id: i64,
            position: i64,
        ) -> $crate::Result<()> {
            sqlx::query(
                "insert into message_mention (message_id, user_id, position) values ($1, $2, $3) \
                 on conflict (message_id, user_id) do nothing",
            )
            .bind(message_id)
            .bind(user_id)
            .bind(position)
            .execute(ex)
            .await?;
            Ok(())
        }

        pub(crate) async fn insert_message_mention_role<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            message_id: i64,
            role_id: i64,
            position: i64,
        ) -> $crate::Result<()> {
            sqlx::query(
                "insert into message_mention_role (message_id, role_id, position) values ($1, $2, $3) \
                 on conflict (message_id, role_id) do nothing",
            )
            .bind(message_id)
            .bind(role_id)
            .bind(position)
            .execute(ex)
            .await?;
            Ok(())
        }

        pub(crate) async fn select_message<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            channel_id: i64,
            message_id: i64,
        ) -> $crate::Result<Option<MessageRow>> {
            sqlx::query_as(concat!(
                "select ",
                $crate::statements::message_columns!(),
                " from message m join \"user\" u on u.user_id = m.author_id \
                 where m.channel_id = $1 and m.message_id = $2"
            ))
            .bind(channel_id)
            .bind(message_id)
            .fetch_optional(ex)
            .await
            .map_err($crate::Error::from)
        }

        /// Newest first.
        pub(crate) async fn select_latest_messages<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            channel_id: i64,
            limit: i64,
        ) -> $crate::Result<Vec<MessageRow>> {
            sqlx::query_as(concat!(
                "select ",
                $crate::statements::message_columns!(),
                " from message m join \"user\" u on u.user_id = m.author_id \
                 where m.channel_id = $1 order by m.message_id desc limit $2"
            ))
            .bind(channel_id)
            .bind(limit)
            .fetch_all(ex)
            .await
            .map_err($crate::Error::from)
        }

        /// Strictly older than `before`, newest first.
        pub(crate) async fn select_messages_before<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            channel_id: i64,
            before: i64,
            limit: i64,
        ) -> $crate::Result<Vec<MessageRow>> {
            sqlx::query_as(concat!(
                "select ",
                $crate::statements::message_columns!(),
                " from message m join \"user\" u on u.user_id = m.author_id \
                 where m.channel_id = $1 and m.message_id < $2 order by m.message_id desc limit $3"
            ))
            .bind(channel_id)
            .bind(before)
            .bind(limit)
            .fetch_all(ex)
            .await
            .map_err($crate::Error::from)
        }

        /// `up_to` itself and older, newest first (the lower half of an `around` page).
        pub(crate) async fn select_messages_up_to<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            channel_id: i64,
            up_to: i64,
            limit: i64,
        ) -> $crate::Result<Vec<MessageRow>> {
            sqlx::query_as(concat!(
                "select ",
                $crate::statements::message_columns!(),
                " from message m join \"user\" u on u.user_id = m.author_id \
                 where m.channel_id = $1 and m.message_id <= $2 order by m.message_id desc limit $3"
            ))
            .bind(channel_id)
            .bind(up_to)
            .bind(limit)
            .fetch_all(ex)
            .await
            .map_err($crate::Error::from)
        }

        /// Strictly newer than `after`, OLDEST first: the page is the messages right after it.
        pub(crate) async fn select_messages_after<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            channel_id: i64,
            after: i64,
            limit: i64,
        ) -> $crate::Result<Vec<MessageRow>> {
            sqlx::query_as(concat!(
                "select ",
                $crate::statements::message_columns!(),
                " from message m join \"user\" u on u.user_id = m.author_id \
                 where m.channel_id = $1 and m.message_id > $2 order by m.message_id asc limit $3"
            ))
            .bind(channel_id)
            .bind(after)
            .bind(limit)
            .fetch_all(ex)
            .await
            .map_err($crate::Error::from)
        }

        /// Messages by id in any channel (reply targets), at most `MAX_IN_LIST`.
        pub(crate) async fn select_messages_by_id<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            message_ids: &[i64],
        ) -> $crate::Result<Vec<MessageRow>> {
            let sql = format!(
                concat!(
                    "select ",
                    $crate::statements::message_columns!(),
                    " from message m join \"user\" u on u.user_id = m.author_id where m.message_id in ({})"
                ),
                placeholders(1, message_ids.len())
            );
            fetch_in_list(ex, &sql, message_ids).await
        }

        /// Mentioned users of some messages (at most `MAX_IN_LIST`), in mention order; ids naming
        /// no user drop out of the join.
        pub(crate) async fn select_message_mentions<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            message_ids: &[i64],
        ) -> $crate::Result<Vec<MentionRow>> {
            let sql = format!(
                concat!(
                    "select mm.message_id, ",
                    $crate::row::user_columns!(),
                    " from message_mention mm join \"user\" u on u.user_id = mm.user_id \
                     where mm.message_id in ({}) order by mm.message_id, mm.position"
                ),
                placeholders(1, message_ids.len())
            );
            fetch_in_list(ex, &sql, message_ids).await
        }

        /// `(message_id, role_id)` of some messages (at most `MAX_IN_LIST`), in mention order.
        pub(crate) async fn select_message_mention_roles<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            message_ids: &[i64],
        ) -> $crate::Result<Vec<(i64, i64)>> {
            let sql = format!(
                "select message_id, role_id from message_mention_role where message_id in ({}) \
                 order by message_id, position",
                placeholders(1, message_ids.len())
            );
            fetch_in_list(ex, &sql, message_ids).await
        }

        /// Per message and emoji: count and whether `viewer` reacted, in first-reacted order.
        /// `COUNT` rather than `MAX(CASE …)` because it is BIGINT on both backends.
        pub(crate) async fn select_reaction_counts<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            viewer: i64,
            message_ids: &[i64],
        ) -> $crate::Result<Vec<ReactionCountRow>> {
            let sql = format!(
                "select message_id, emoji, count(*) as count, \
                 count(case when user_id = $1 then 1 end) as me \
                 from reaction where message_id in ({}) \
                 group by message_id, emoji order by message_id, min(reaction_id)",
                placeholders(2, message_ids.len())
            );
            let mut query = sqlx::query_as(&sql).bind(viewer);
            for id in message_ids {
                query = query.bind(*id);
            }
            query.fetch_all(ex).await.map_err($crate::Error::from)
        }

        pub(crate) async fn update_message_content<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            channel_id: i64,
            message_id: i64,
            content: &str,
            mention_everyone: bool,
            edited_at: i64,
        ) -> $crate::Result<u64> {
            let result = sqlx::query(
                "update message set content = $3, mention_everyone = $4, edited_at = $5 \
                 where channel_id = $1 and message_id = $2",
            )
            .bind(channel_id)
            .bind(message_id)
            .bind(content)
            .bind(mention_everyone)
            .bind(edited_at)
            .execute(ex)
            .await?;
            Ok(result.rows_affected())
        }

        pub(crate) async fn delete_message_mentions<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            message_id: i64,
        ) -> $crate::Result<()> {
            sqlx::query("delete from message_mention where message_id = $1")
                .bind(message_id)
                .execute(ex)
                .await?;
            Ok(())
        }

        /// Mentions and reactions go by `ON DELETE CASCADE`.
        pub(crate) async fn delete_message<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            channel_id: i64,
            message_id: i64,
        ) -> $crate::Result<u64> {
            let result = sqlx::query("delete from message where channel_id = $1 and message_id = $2")
                .bind(channel_id)
                .bind(message_id)
                .execute(ex)
                .await?;
            Ok(result.rows_affected())
        }

        // ---- reaction ----

        /// Inserts nothing when the message is gone or the user already reacted with the emoji.
        pub(crate) async fn insert_reaction<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            message_id: i64,
            user_id: i64,
            emoji: &str,
            created_at: i64,
        ) -> $crate::Result<u64> {
            let result = sqlx::query(
                "insert into reaction (message_id, user_id, emoji, created_at) \
                 select $1, $2, $3, $4 where exists (select 1 from message where message_id = $1) \
                 on conflict (message_id, emoji, user_id) do nothing",
            )
            .bind(message_id)
            .bind(user_id)
            .bind(emoji)
            .bind(created_at)
            .execute(ex)
            .await?;
            Ok(result.rows_affected())
        }

        pub(crate) async fn delete_reaction<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            message_id: i64,
            user_id: i64,
            emoji: &str,
        ) -> $crate::Result<u64> {
            let result =
                sqlx::query("delete from reaction where message_id = $1 and emoji = $2 and user_id = $3")
                    .bind(message_id)
                    .bind(emoji)
                    .bind(user_id)
                    .execute(ex)
                    .await?;
            Ok(result.rows_affected())
        }

        pub(crate) async fn count_reaction_emoji<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            message_id: i64,
        ) -> $crate::Result<i64> {
            sqlx::query_scalar("select count(distinct emoji) from reaction where message_id = $1")
                .bind(message_id)
                .fetch_one(ex)
                .await
                .map_err($crate::Error::from)
        }

        pub(crate) async fn select_reactors<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            message_id: i64,
            emoji: &str,
            after: Option<i64>,
            limit: i64,
        ) -> $crate::Result<Vec<UserRow>> {
            sqlx::query_as(concat!(
                "select ",
                $crate::row::user_columns!(),
                " from reaction r join \"user\" u on u.user_id = r.user_id \
                 where r.message_id = $1 and r.emoji = $2 and ($3 is null or r.user_id > $3) \
                 order by r.user_id limit $4"
            ))
            .bind(message_id)
            .bind(emoji)
            .bind(after)
            .bind(limit)
            .fetch_all(ex)
            .await
            .map_err($crate::Error::from)
        }

        // ---- invite ----

        pub(crate) async fn insert_invite<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            invite: &NewInvite,
        ) -> $crate::Result<()> {
            sqlx::query(
                "insert into invite (code, guild_id, channel_id, inviter_id, max_uses, max_age, temporary, \
                 created_at) values ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&invite.code)
            .bind(invite.guild_id.to_i64())
            .bind(invite.channel_id.to_i64())
            .bind(invite.inviter_id.to_i64())
            .bind(i64::from(invite.max_uses))
            .bind(i64::from(invite.max_age))
            .bind(invite.temporary)
            .bind(invite.created_at.unix_micros())
            .execute(ex)
            .await?;
            Ok(())
        }

        pub(crate) async fn select_invite<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            code: &str,
        ) -> $crate::Result<Option<InviteRow>> {
            sqlx::query_as(
                "select i.code, i.guild_id, i.channel_id, i.inviter_id, i.uses, i.max_uses, i.max_age, \
                 i.temporary, i.created_at, g.name as guild_name, g.icon as guild_icon, \
                 g.banner as guild_banner, g.splash as guild_splash, g.description as guild_description, \
                 g.features as guild_features, g.nsfw_level as guild_nsfw_level, \
                 g.vanity_url_code as guild_vanity_url_code, \
                 g.verification_level as guild_verification_level, \
                 c.name as channel_name, c.kind as channel_kind \
                 from invite i join guild g on g.guild_id = i.guild_id \
                 join channel c on c.channel_id = i.channel_id where i.code = $1",
            )
            .bind(code)
            .fetch_optional(ex)
            .await
            .map_err($crate::Error::from)
        }

        /// Counts one use of a live invite: the cap and expiry checks and the increment are one
        /// statement, so concurrent joins cannot overshoot. Returns the invite's guild when counted.
        pub(crate) async fn increment_live_invite_uses<'e, E: Executor<'e, Database = $db>>(
            ex: E,
            code: &str,
            now: i64,
        ) -> $crate::Result<Option<i64>> {
            sqlx::query_scalar(
                "update invite set uses = uses + 1 where code = $1 and (max_uses = 0 or uses < max_uses) \
                 and (max_age = 0 or created_at + max_age * 1000000 > $2) returning guild_id",
            )
            .bind(code)
            .bind(now)
            .fetch_optional(ex)
            .await
            .map_err($crate::Error::from)
        }

        // ---- health ----

        pub(crate) async fn ping<'e, E: Executor<'e, Database = $db>>(ex: E) -> $crate::Result<()> {
            sqlx::query("select 1").execute(ex).await?;
            Ok(())
        }
    };
}
pub(crate) use define_statements;
