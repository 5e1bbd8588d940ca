//! The repository traits, implemented once for both backends.
//!
//! [`impl_store!`] expands to the `Store` implementation for a struct holding `pool: Pool<$db>`,
//! calling the statement functions of the module it is given (see `statements.rs`). The logic of
//! each method therefore exists once; only types differ between the two expansions.

/// Chunked `IN (…)` reads: runs `$statement(pool, chunk, …)` per chunk of `$ids` and concatenates.
macro_rules! chunked {
    ($ids:expr, |$chunk:ident| $call:expr) => {{
        let mut all = Vec::new();
        for $chunk in $ids.chunks($crate::statements::MAX_IN_LIST) {
            all.extend($call.await?);
        }
        all
    }};
}
pub(crate) use chunked;

/// Expands to `impl Store` (and every supertrait) for `$store`, with statements from `$sql`.
macro_rules! impl_store {
    ($store:ty, $sql:ident) => {
        impl $store {
            /// Public users by id, read in chunks.
            async fn load_users(
                &self,
                ids: &[i64],
            ) -> $crate::Result<Vec<concord_core::model::User>> {
                let rows = $crate::store::chunked!(ids, |chunk| $sql::select_users_by_id(
                    &self.pool, chunk
                ));
                Ok(rows
                    .into_iter()
                    .map($crate::row::UserRow::into_user)
                    .collect())
            }

            /// Guild rows with their roles.
            async fn load_guilds(
                &self,
                rows: Vec<$crate::row::GuildRow>,
            ) -> concord_core::repo::RepoResult<Vec<concord_core::model::Guild>> {
                let ids: Vec<i64> = rows.iter().map(|g| g.guild_id).collect();
                let roles = $crate::store::chunked!(ids, |chunk| $sql::select_guild_roles(
                    &self.pool, chunk
                ));
                Ok($crate::assemble::guilds_with_roles(rows, roles)?)
            }

            /// Message rows (in page order) with mentions, reactions and reply targets.
            async fn load_messages(
                &self,
                page: Vec<$crate::row::MessageRow>,
                viewer: i64,
            ) -> concord_core::repo::RepoResult<Vec<concord_core::model::Message>> {
                if page.is_empty() {
                    return Ok(Vec::new());
                }
                let missing = $crate::assemble::missing_targets(&page);
                let targets = $crate::store::chunked!(
                    missing,
                    |chunk| $sql::select_messages_by_id(&self.pool, chunk)
                );
                let ids: Vec<i64> = page
                    .iter()
                    .chain(targets.iter())
                    .map(|m| m.message_id)
                    .collect();
                let mentions = $crate::store::chunked!(ids, |chunk| $sql::select_message_mentions(
                    &self.pool, chunk
                ));
                let mention_roles =
                    $crate::store::chunked!(ids, |chunk| $sql::select_message_mention_roles(
                        &self.pool, chunk
                    ));
                let reactions = $crate::store::chunked!(ids, |chunk| $sql::select_reaction_counts(
                    &self.pool, viewer, chunk
                ));
                let extras = $crate::assemble::message_extras(mentions, mention_roles, reactions);
                Ok($crate::assemble::messages(page, targets, extras)?)
            }
        }

        #[async_trait::async_trait]
        impl concord_core::repo::UserRepo for $store {
            async fn insert_user(
                &self,
                user: &concord_core::repo::NewUser,
            ) -> concord_core::repo::RepoResult<()> {
                let now = concord_core::timestamp::Timestamp::now().unix_micros();
                Ok($sql::insert_user(&self.pool, user, now).await?)
            }

            async fn current_user(
                &self,
                id: concord_core::id::UserId,
            ) -> concord_core::repo::RepoResult<Option<concord_core::model::CurrentUser>> {
                let row = $sql::select_current_user(&self.pool, id.to_i64()).await?;
                Ok(row.map($crate::row::CurrentUserRow::into_current_user))
            }

            async fn users(
                &self,
                ids: &[concord_core::id::UserId],
            ) -> concord_core::repo::RepoResult<Vec<concord_core::model::User>> {
                let mut raw: Vec<i64> = ids.iter().map(|id| id.to_i64()).collect();
                raw.sort_unstable();
                raw.dedup();
                Ok(self.load_users(&raw).await?)
            }

            async fn credentials(
                &self,
                login: &str,
            ) -> concord_core::repo::RepoResult<Option<(concord_core::id::UserId, String)>> {
                let row = $sql::select_credentials(&self.pool, login).await?;
                Ok(row.map(|(id, hash)| ($crate::row::id(id), hash)))
            }

            async fn update_user(
                &self,
                id: concord_core::id::UserId,
                patch: &concord_core::repo::UserPatch,
            ) -> concord_core::repo::RepoResult<Option<concord_core::model::CurrentUser>> {
                let now = concord_core::timestamp::Timestamp::now().unix_micros();
                if $sql::update_user(&self.pool, id.to_i64(), patch, now).await? == 0 {
                    return Ok(None);
                }
                self.current_user(id).await
            }
        }

        #[async_trait::async_trait]
        impl concord_core::repo::TokenRepo for $store {
            async fn insert_token(
                &self,
                token_id: u64,
                user: concord_core::id::UserId,
                created_at: concord_core::timestamp::Timestamp,
            ) -> concord_core::repo::RepoResult<()> {
                let token_id = $crate::row::bits_to_db(token_id);
                Ok($sql::insert_token(
                    &self.pool,
                    token_id,
                    user.to_i64(),
                    created_at.unix_micros(),
                )
                .await?)
            }

            async fn token_is_live(
                &self,
                token_id: u64,
                user: concord_core::id::UserId,
            ) -> concord_core::repo::RepoResult<bool> {
                let token_id = $crate::row::bits_to_db(token_id);
                Ok($sql::select_live_token(&self.pool, token_id, user.to_i64())
                    .await?
                    .is_some())
            }

            async fn revoke_token(&self, token_id: u64) -> concord_core::repo::RepoResult<()> {
                Ok($sql::delete_token(&self.pool, $crate::row::bits_to_db(token_id)).await?)
            }

            async fn revoke_user_tokens(
                &self,
                user: concord_core::id::UserId,
            ) -> concord_core::repo::RepoResult<()> {
                Ok($sql::delete_user_tokens(&self.pool, user.to_i64()).await?)
            }
        }

        #[async_trait::async_trait]
        impl concord_core::repo::ApplicationRepo for $store {
            async fn create_application(
                &self,
                app: &concord_core::repo::NewApplication,
            ) -> concord_core::repo::RepoResult<()> {
                let now = concord_core::timestamp::Timestamp::now().unix_micros();
                let mut tx = self.pool.begin().await.map_err($crate::Error::from)?;
                $sql::insert_user(&mut *tx, &app.bot, now).await?;
                $sql::insert_application(&mut *tx, app, now).await?;
                tx.commit().await.map_err($crate::Error::from)?;
                Ok(())
            }

            async fn application(
                &self,
                id: concord_core::id::ApplicationId,
            ) -> concord_core::repo::RepoResult<Option<concord_core::model::Application>> {
                let Some(row) = $sql::select_application(&self.pool, id.to_i64()).await? else {
                    return Ok(None);
                };
                let users = self.load_users(&[row.owner_id, row.application_id]).await?;
                let find = |id: i64| users.iter().find(|u| u.id.to_i64() == id).cloned();
                // The owner row cannot vanish while the application exists (cascade), so a
                // missing owner means a concurrent delete: report the application as gone.
                let Some(owner) = find(row.owner_id) else {
                    return Ok(None);
                };
                let bot = find(row.application_id);
                Ok(Some(row.into_application(owner, bot)))
            }
        }

        #[async_trait::async_trait]
        impl concord_core::repo::GuildRepo for $store {
            async fn create_guild(
                &self,
                guild: &concord_core::repo::NewGuild,
            ) -> concord_core::repo::RepoResult<()> {
                let created_at = guild.created_at.unix_micros();
                let guild_id = guild.id.to_i64();
                let mut tx = self.pool.begin().await.map_err($crate::Error::from)?;
                $sql::insert_guild(&mut *tx, guild).await?;
                // @everyone: id = guild id, position 0.
                $sql::insert_role(
                    &mut *tx,
                    guild_id,
                    guild_id,
                    "@everyone",
                    $crate::row::bits_to_db(guild.everyone_permissions.bits()),
                    0,
                    created_at,
                )
                .await?;
                for channel in &guild.channels {
                    let overwrites = serde_json::to_string(&channel.permission_overwrites)
                        .map_err($crate::error::Error::from)?;
                    $sql::insert_channel(&mut *tx, channel, &overwrites, created_at).await?;
                }
                $sql::insert_member(&mut *tx, guild_id, guild.owner_id.to_i64(), created_at)
                    .await?;
                tx.commit().await.map_err($crate::Error::from)?;
                Ok(())
            }

            async fn guild(
                &self,
                id: concord_core::id::GuildId,
            ) -> concord_core::repo::RepoResult<Option<concord_core::model::Guild>> {
                let Some(row) = $sql::select_guild(&self.pool, id.to_i64()).await? else {
                    return Ok(None);
                };
                Ok(self.load_guilds(vec![row]).await?.pop())
            }

            async fn update_guild(
                &self,
                id: concord_core::id::GuildId,
                patch: &concord_core::repo::GuildPatch,
            ) -> concord_core::repo::RepoResult<Option<concord_core::model::Guild>> {
                let now = concord_core::timestamp::Timestamp::now().unix_micros();
                if $sql::update_guild(&self.pool, id.to_i64(), patch, now).await? == 0 {
                    return Ok(None);
                }
                self.guild(id).await
            }

            async fn delete_guild(
                &self,
                id: concord_core::id::GuildId,
            ) -> concord_core::repo::RepoResult<bool> {
                Ok($sql::delete_guild(&self.pool, id.to_i64()).await? > 0)
            }

            async fn user_guilds(
                &self,
                user: concord_core::id::UserId,
                before: Option<concord_core::id::GuildId>,
                after: Option<concord_core::id::GuildId>,
                limit: u32,
            ) -> concord_core::repo::RepoResult<Vec<concord_core::model::Guild>> {
                let rows = $sql::select_user_guilds(
                    &self.pool,
                    user.to_i64(),
                    before.map(|g| g.to_i64()),
                    after.map(|g| g.to_i64()),
                    i64::from(limit),
                )
                .await?;
                self.load_guilds(rows).await
            }

            async fn user_guild_ids(
                &self,
                user: concord_core::id::UserId,
            ) -> concord_core::repo::RepoResult<Vec<concord_core::id::GuildId>> {
                let ids = $sql::select_user_guild_ids(&self.pool, user.to_i64()).await?;
                Ok(ids.into_iter().map($crate::row::id).collect())
            }
        }

        #[async_trait::async_trait]
        impl concord_core::repo::MemberRepo for $store {
            async fn add_member(
                &self,
                guild: concord_core::id::GuildId,
                user: concord_core::id::UserId,
                joined_at: concord_core::timestamp::Timestamp,
            ) -> concord_core::repo::RepoResult<bool> {
                let added = $sql::insert_member(
                    &self.pool,
                    guild.to_i64(),
                    user.to_i64(),
                    joined_at.unix_micros(),
                )
                .await?;
                Ok(added > 0)
            }

            async fn remove_member(
                &self,
                guild: concord_core::id::GuildId,
                user: concord_core::id::UserId,
            ) -> concord_core::repo::RepoResult<bool> {
                Ok($sql::delete_member(&self.pool, guild.to_i64(), user.to_i64()).await? > 0)
            }

            async fn member(
                &self,
                guild: concord_core::id::GuildId,
                user: concord_core::id::UserId,
            ) -> concord_core::repo::RepoResult<Option<concord_core::model::Member>> {
                let Some(row) =
                    $sql::select_member(&self.pool, guild.to_i64(), user.to_i64()).await?
                else {
                    return Ok(None);
                };
                let pairs =
                    $sql::select_member_role_pairs(&self.pool, guild.to_i64(), &[user.to_i64()])
                        .await?;
                Ok($crate::assemble::members_with_roles(vec![row], pairs).pop())
            }

            async fn members(
                &self,
                guild: concord_core::id::GuildId,
                after: Option<concord_core::id::UserId>,
                limit: u32,
            ) -> concord_core::repo::RepoResult<Vec<concord_core::model::Member>> {
                let guild_id = guild.to_i64();
                let rows = $sql::select_members(
                    &self.pool,
                    guild_id,
                    after.map(|u| u.to_i64()),
                    i64::from(limit),
                )
                .await?;
                let ids: Vec<i64> = rows.iter().map(|m| m.user.user_id).collect();
                let pairs = $crate::store::chunked!(ids, |chunk| $sql::select_member_role_pairs(
                    &self.pool, guild_id, chunk
                ));
                Ok($crate::assemble::members_with_roles(rows, pairs))
            }

            async fn member_count(
                &self,
                guild: concord_core::id::GuildId,
            ) -> concord_core::repo::RepoResult<u64> {
                let count = $sql::count_members(&self.pool, guild.to_i64()).await?;
                Ok(u64::try_from(count).unwrap_or_default())
            }

            async fn member_roles(
                &self,
                guild: concord_core::id::GuildId,
                user: concord_core::id::UserId,
            ) -> concord_core::repo::RepoResult<Option<Vec<concord_core::id::RoleId>>> {
                let rows =
                    $sql::select_member_role_ids(&self.pool, guild.to_i64(), user.to_i64()).await?;
                if rows.is_empty() {
                    return Ok(None);
                }
                Ok(Some(
                    rows.into_iter().flatten().map($crate::row::id).collect(),
                ))
            }
        }

        #[async_trait::async_trait]
        impl concord_core::repo::ChannelRepo for $store {
            async fn insert_channel(
                &self,
                channel: &concord_core::model::Channel,
            ) -> concord_core::repo::RepoResult<()> {
                let now = concord_core::timestamp::Timestamp::now().unix_micros();
                let overwrites = serde_json::to_string(&channel.permission_overwrites)
                    .map_err($crate::error::Error::from)?;
                Ok($sql::insert_channel(&self.pool, channel, &overwrites, now).await?)
            }

            async fn channel(
                &self,
                id: concord_core::id::ChannelId,
            ) -> concord_core::repo::RepoResult<Option<concord_core::model::Channel>> {
                let row = $sql::select_channel(&self.pool, id.to_i64()).await?;
                Ok(row.map($crate::row::ChannelRow::into_channel).transpose()?)
            }

            async fn guild_channels(
                &self,
                guild: concord_core::id::GuildId,
            ) -> concord_core::repo::RepoResult<Vec<concord_core::model::Channel>> {
                let rows = $sql::select_guild_channels(&self.pool, guild.to_i64()).await?;
                Ok(rows
                    .into_iter()
                    .map($crate::row::ChannelRow::into_channel)
                    .collect::<Result<Vec<_>, _>>()?)
            }

            async fn update_channel(
                &self,
                channel: &concord_core::model::Channel,
            ) -> concord_core::repo::RepoResult<bool> {
                let now = concord_core::timestamp::Timestamp::now().unix_micros();
                let overwrites = serde_json::to_string(&channel.permission_overwrites)
                    .map_err($crate::error::Error::from)?;
                Ok($sql::update_channel(&self.pool, channel, &overwrites, now).await? > 0)
            }

            async fn delete_channel(
                &self,
                id: concord_core::id::ChannelId,
            ) -> concord_core::repo::RepoResult<bool> {
                // The guild update comes first so SQLite takes the write lock at the first
                // statement (a read first could fail to upgrade under contention).
                let mut tx = self.pool.begin().await.map_err($crate::Error::from)?;
                $sql::clear_guild_channel_refs(&mut *tx, id.to_i64()).await?;
                let deleted = $sql::delete_channel(&mut *tx, id.to_i64()).await?;
                tx.commit().await.map_err($crate::Error::from)?;
                Ok(deleted > 0)
            }
        }

        #[async_trait::async_trait]
        impl concord_core::repo::MessageRepo for $store {
            async fn insert_message(
                &self,
                message: &concord_core::repo::NewMessage,
            ) -> concord_core::repo::RepoResult<()> {
                let message_id = message.id.to_i64();
                if message.mentions.is_empty() && message.mention_roles.is_empty() {
                    // One statement needs no transaction: most messages cost one round trip.
                    return Ok($sql::insert_message(&self.pool, message).await?);
                }
                let mut tx = self.pool.begin().await.map_err($crate::Error::from)?;
                $sql::insert_message(&mut *tx, message).await?;
                for (position, user) in (0_i64..).zip(&message.mentions) {
                    $sql::insert_message_mention(&mut *tx, message_id, user.to_i64(), position)
                        .await?;
                }
                for (position, role) in (0_i64..).zip(&message.mention_roles) {
                    $sql::insert_message_mention_role(
                        &mut *tx,
                        message_id,
                        role.to_i64(),
                        position,
                    )
                    .await?;
                }
                tx.commit().await.map_err($crate::Error::from)?;
                Ok(())
            }

            async fn message(
                &self,
                channel: concord_core::id::ChannelId,
                id: concord_core::id::MessageId,
                viewer: concord_core::id::UserId,
            ) -> concord_core::repo::RepoResult<Option<concord_core::model::Message>> {
                let Some(row) =
                    $sql::select_message(&self.pool, channel.to_i64(), id.to_i64()).await?
                else {
                    return Ok(None);
                };
                Ok(self.load_messages(vec![row], viewer.to_i64()).await?.pop())
            }

            async fn messages(
                &self,
                channel: concord_core::id::ChannelId,
                page: concord_core::repo::MessagePage,
                limit: u32,
                viewer: concord_core::id::UserId,
            ) -> concord_core::repo::RepoResult<Vec<concord_core::model::Message>> {
                use concord_core::repo::MessagePage;
                let channel = channel.to_i64();
                let limit = i64::from(limit);
                let rows = match page {
                    MessagePage::Latest => {
                        $sql::select_latest_messages(&self.pool, channel, limit).await?
                    }
                    MessagePage::Before(before) => {
                        $sql::select_messages_before(&self.pool, channel, before.to_i64(), limit)
                            .await?
                    }
                    MessagePage::After(after) => {
                        let mut rows =
                            $sql::select_messages_after(&self.pool, channel, after.to_i64(), limit)
                                .await?;
                        rows.reverse();
                        rows
                    }
                    MessagePage::Around(around) => {
                        // The centre and older messages get the larger half, so limit 1 is the
                        // centre itself.
                        let newer_limit = limit / 2;
                        let mut rows = $sql::select_messages_after(
                            &self.pool,
                            channel,
                            around.to_i64(),
                            newer_limit,
                        )
                        .await?;
                        rows.reverse();
                        rows.extend(
                            $sql::select_messages_up_to(
                                &self.pool,
                                channel,
                                around.to_i64(),
                                limit - newer_limit,
                            )
                            .await?,
                        );
                        rows
                    }
                };
                self.load_messages(rows, viewer.to_i64()).await
            }

            async fn edit_message(
                &self,
                channel: concord_core::id::ChannelId,
                id: concord_core::id::MessageId,
                content: &str,
                mentions: &[concord_core::id::UserId],
                mention_everyone: bool,
                edited_at: concord_core::timestamp::Timestamp,
            ) -> concord_core::repo::RepoResult<bool> {
                let message_id = id.to_i64();
                let mut tx = self.pool.begin().await.map_err($crate::Error::from)?;
                let updated = $sql::update_message_content(
                    &mut *tx,
                    channel.to_i64(),
                    message_id,
                    content,
                    mention_everyone,
                    edited_at.unix_micros(),
                )
                .await?;
                if updated == 0 {
                    return Ok(false);
                }
                $sql::delete_message_mentions(&mut *tx, message_id).await?;
                for (position, user) in (0_i64..).zip(mentions) {
                    $sql::insert_message_mention(&mut *tx, message_id, user.to_i64(), position)
                        .await?;
                }
                tx.commit().await.map_err($crate::Error::from)?;
                Ok(true)
            }

            async fn delete_message(
                &self,
                channel: concord_core::id::ChannelId,
                id: concord_core::id::MessageId,
            ) -> concord_core::repo::RepoResult<bool> {
                Ok($sql::delete_message(&self.pool, channel.to_i64(), id.to_i64()).await? > 0)
            }

            async fn add_reaction(
                &self,
                message: concord_core::id::MessageId,
                user: concord_core::id::UserId,
                emoji: &str,
            ) -> concord_core::repo::RepoResult<bool> {
                let now = concord_core::timestamp::Timestamp::now().unix_micros();
                Ok(
                    $sql::insert_reaction(&self.pool, message.to_i64(), user.to_i64(), emoji, now)
                        .await?
                        > 0,
                )
            }

            async fn remove_reaction(
                &self,
                message: concord_core::id::MessageId,
                user: concord_core::id::UserId,
                emoji: &str,
            ) -> concord_core::repo::RepoResult<bool> {
                Ok(
                    $sql::delete_reaction(&self.pool, message.to_i64(), user.to_i64(), emoji)
                        .await?
                        > 0,
                )
            }

            async fn reaction_emoji_count(
                &self,
                message: concord_core::id::MessageId,
            ) -> concord_core::repo::RepoResult<u64> {
                let count = $sql::count_reaction_emoji(&self.pool, message.to_i64()).await?;
                Ok(u64::try_from(count).unwrap_or_default())
            }

            async fn reactors(
                &self,
                message: concord_core::id::MessageId,
                emoji: &str,
                after: Option<concord_core::id::UserId>,
                limit: u32,
            ) -> concord_core::repo::RepoResult<Vec<concord_core::model::User>> {
                let rows = $sql::select_reactors(
                    &self.pool,
                    message.to_i64(),
                    emoji,
                    after.map(|u| u.to_i64()),
                    i64::from(limit),
                )
                .await?;
                Ok(rows
                    .into_iter()
                    .map($crate::row::UserRow::into_user)
                    .collect())
            }
        }

        #[async_trait::async_trait]
        impl concord_core::repo::InviteRepo for $store {
            async fn insert_invite(
                &self,
                invite: &concord_core::repo::NewInvite,
            ) -> concord_core::repo::RepoResult<()> {
                Ok($sql::insert_invite(&self.pool, invite).await?)
            }

            async fn invite(
                &self,
                code: &str,
            ) -> concord_core::repo::RepoResult<Option<concord_core::model::Invite>> {
                let Some(row) = $sql::select_invite(&self.pool, code).await? else {
                    return Ok(None);
                };
                let inviter = match row.inviter_id {
                    Some(id) => self.load_users(&[id]).await?.pop(),
                    None => None,
                };
                Ok(Some(row.into_invite(inviter)?))
            }

            async fn accept_invite(
                &self,
                code: &str,
                user: concord_core::id::UserId,
                now: concord_core::timestamp::Timestamp,
            ) -> concord_core::repo::RepoResult<concord_core::repo::InviteAcceptance> {
                use concord_core::repo::InviteAcceptance;
                let now = now.unix_micros();
                // The invite update comes first so SQLite takes the write lock at the first
                // statement, and PostgreSQL serialises concurrent joins on the invite row.
                let mut tx = self.pool.begin().await.map_err($crate::Error::from)?;
                let Some(guild_id) = $sql::increment_live_invite_uses(&mut *tx, code, now).await?
                else {
                    return Ok(InviteAcceptance::Unavailable);
                };
                let guild = $crate::row::id(guild_id);
                if $sql::insert_member(&mut *tx, guild_id, user.to_i64(), now).await? == 0 {
                    // Already a member: the use counted above must not stick.
                    tx.rollback().await.map_err($crate::Error::from)?;
                    return Ok(InviteAcceptance::AlreadyMember(guild));
                }
                tx.commit().await.map_err($crate::Error::from)?;
                Ok(InviteAcceptance::Joined(guild))
            }
        }

        #[async_trait::async_trait]
        impl concord_core::repo::Store for $store {
            async fn ping(&self) -> concord_core::repo::RepoResult<()> {
                Ok($sql::ping(&self.pool).await?)
            }
        }
    };
}
pub(crate) use impl_store;
