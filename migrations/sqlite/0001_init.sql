-- Concord schema, SQLite flavour. migrations/postgres/0001_init.sql is the same schema statement for
-- statement; the storage crate sends identical SQL text to both, so names and column types agree.
--
-- Conventions:
-- * Snowflake ids are BIGINT (they fit in 63 bits) and named `<table>_id`.
-- * Timestamps are BIGINT unix microseconds, the resolution of core's Timestamp, so both backends
--   store and compare them the same way without date-time type mapping.
-- * Every number is declared BIGINT as on PostgreSQL (SQLite stores all of them as INTEGER).
-- * BOOLEAN columns hold 0/1 here; sqlx decodes them as bool on both backends.
-- * Foreign keys need `PRAGMA foreign_keys = ON`, which the store sets on every connection.
-- * u64 bit sets (permissions, flags) are stored bit-for-bit in BIGINT.
-- * Unique constraints carry explicit names: the code maps violations of user_username_key,
--   user_email_key and invite_pkey to API errors by name.

-- "user" is quoted to keep the SQL text identical to PostgreSQL, where the word is reserved.
create table "user" (
    user_id       bigint  not null constraint user_pkey primary key,
    username      text    not null constraint user_username_key unique,
    -- NULL for bots; several NULLs do not collide under UNIQUE.
    email         text             constraint user_email_key unique,
    discriminator text    not null,
    global_name   text,
    avatar        text,
    banner        text,
    bot           boolean not null default false,
    -- Argon2id PHC string; NULL for bots, which cannot log in with a password.
    password_hash text,
    public_flags  bigint  not null default 0,
    flags         bigint  not null default 0,
    locale        text    not null default 'en-US',
    -- Email verification does not exist yet; the column is here so adding it needs no migration.
    verified      boolean not null default false,
    created_at    bigint  not null,
    updated_at    bigint  not null
);

-- Issued tokens; a token is live while its row exists, so revoking is a DELETE.
create table auth_token (
    -- Random u64 from the token itself, stored bit-for-bit.
    token_id   bigint not null constraint auth_token_pkey primary key,
    user_id    bigint not null constraint auth_token_user_id_fkey
                   references "user" (user_id) on delete cascade,
    created_at bigint not null
);
create index auth_token_user_id_idx on auth_token (user_id);

-- An application shares its id with its bot user, like Discord.
create table application (
    application_id bigint not null constraint application_pkey primary key
                       constraint application_bot_fkey references "user" (user_id) on delete cascade,
    owner_id       bigint not null constraint application_owner_id_fkey
                       references "user" (user_id) on delete cascade,
    name           text   not null,
    -- Privileged-intent flags (u64 bits).
    flags          bigint not null default 0,
    verify_key     text   not null,
    description    text   not null default '',
    icon           text,
    created_at     bigint not null,
    updated_at     bigint not null
);
create index application_owner_id_idx on application (owner_id);

create table guild (
    guild_id                      bigint  not null constraint guild_pkey primary key,
    name                          text    not null,
    -- No cascade: users are never hard-deleted while they own guilds.
    owner_id                      bigint  not null constraint guild_owner_id_fkey references "user" (user_id),
    icon                          text,
    banner                        text,
    splash                        text,
    discovery_splash              text,
    description                   text,
    -- Channel references carry no foreign key: guild and channel would reference each other.
    -- delete_channel clears them instead.
    afk_channel_id                bigint,
    afk_timeout                   bigint  not null default 300,
    system_channel_id             bigint,
    system_channel_flags          bigint  not null default 0,
    rules_channel_id              bigint,
    public_updates_channel_id     bigint,
    safety_alerts_channel_id      bigint,
    verification_level            bigint  not null default 0,
    default_message_notifications bigint  not null default 0,
    explicit_content_filter       bigint  not null default 0,
    mfa_level                     bigint  not null default 0,
    nsfw_level                    bigint  not null default 0,
    preferred_locale              text    not null default 'en-US',
    premium_progress_bar_enabled  boolean not null default false,
    vanity_url_code               text,
    -- JSON array of feature strings; read whole, never queried by element.
    features                      text    not null default '[]',
    created_at                    bigint  not null,
    updated_at                    bigint  not null
);

-- Roles, including @everyone whose id equals the guild id.
create table role (
    role_id       bigint  not null constraint role_pkey primary key,
    guild_id      bigint  not null constraint role_guild_id_fkey references guild (guild_id) on delete cascade,
    name          text    not null,
    -- Permission bits (u64) stored bit-for-bit.
    permissions   bigint  not null,
    position      bigint  not null default 0,
    color         bigint  not null default 0,
    hoist         boolean not null default false,
    mentionable   boolean not null default false,
    icon          text,
    unicode_emoji text,
    flags         bigint  not null default 0,
    created_at    bigint  not null
);
-- Matches the read order: a guild's roles by position, then id.
create index role_guild_id_position_idx on role (guild_id, position, role_id);

create table member (
    guild_id                     bigint  not null constraint member_guild_id_fkey
                                     references guild (guild_id) on delete cascade,
    user_id                      bigint  not null constraint member_user_id_fkey
                                     references "user" (user_id) on delete cascade,
    nick                         text,
    avatar                       text,
    joined_at                    bigint  not null,
    premium_since                bigint,
    communication_disabled_until bigint,
    deaf                         boolean not null default false,
    mute                         boolean not null default false,
    pending                      boolean not null default false,
    flags                        bigint  not null default 0,
    -- (guild_id, user_id) also serves member listing by guild in user id order.
    constraint member_pkey primary key (guild_id, user_id)
);
-- A user's guilds (READY, /users/@me/guilds).
create index member_user_id_idx on member (user_id, guild_id);

-- Roles held by members. @everyone is implicit and never stored here.
create table member_role (
    guild_id bigint not null,
    user_id  bigint not null,
    role_id  bigint not null constraint member_role_role_id_fkey references role (role_id) on delete cascade,
    constraint member_role_pkey primary key (guild_id, user_id, role_id),
    -- Leaving the guild drops the member's roles.
    constraint member_role_member_fkey foreign key (guild_id, user_id)
        references member (guild_id, user_id) on delete cascade
);
-- Serves the cascade when a role is deleted.
create index member_role_role_id_idx on member_role (role_id);

create table channel (
    channel_id            bigint  not null constraint channel_pkey primary key,
    -- Nullable so direct-message channels can live here later.
    guild_id              bigint           constraint channel_guild_id_fkey
                              references guild (guild_id) on delete cascade,
    -- Discord's channel type integer (`type` on the wire).
    kind                  bigint  not null,
    name                  text    not null,
    topic                 text,
    position              bigint  not null default 0,
    nsfw                  boolean not null default false,
    -- Deleting a category orphans its children instead of deleting them, like Discord.
    parent_id             bigint           constraint channel_parent_id_fkey
                              references channel (channel_id) on delete set null,
    rate_limit_per_user   bigint  not null default 0,
    flags                 bigint  not null default 0,
    -- No foreign key: Discord keeps pointing at the last message even after it is deleted.
    last_message_id       bigint,
    -- JSON array of permission overwrites in wire form; always read and written whole.
    permission_overwrites text    not null default '[]',
    created_at            bigint  not null,
    updated_at            bigint  not null
);
-- Matches the read order: a guild's channels by position, then id.
create index channel_guild_id_position_idx on channel (guild_id, position, channel_id);
-- Serves ON DELETE SET NULL when a category goes.
create index channel_parent_id_idx on channel (parent_id);

create table message (
    message_id            bigint  not null constraint message_pkey primary key,
    channel_id            bigint  not null constraint message_channel_id_fkey
                              references channel (channel_id) on delete cascade,
    -- Denormalised from the channel so a message reads without a join.
    guild_id              bigint,
    author_id             bigint  not null constraint message_author_id_fkey references "user" (user_id),
    content               text    not null,
    -- Discord's message type integer (`type` on the wire): 0 default, 19 reply.
    kind                  bigint  not null default 0,
    tts                   boolean not null default false,
    mention_everyone      boolean not null default false,
    -- The client's nonce as JSON text, echoed back verbatim (string or integer).
    nonce                 text,
    -- No foreign key: a reply outlives its target and still reports the target's id.
    referenced_message_id bigint,
    pinned                boolean not null default false,
    flags                 bigint  not null default 0,
    -- NULL until the first edit (`edited_timestamp`). Creation time is in the snowflake.
    edited_at             bigint
);
-- History pages: a channel's messages by id, in either direction.
create index message_channel_id_message_id_idx on message (channel_id, message_id);
-- Serves deleting a user's messages later and the author foreign key check.
create index message_author_id_idx on message (author_id);

-- Mentioned users, in the order the message named them.
create table message_mention (
    message_id bigint not null constraint message_mention_message_id_fkey
                   references message (message_id) on delete cascade,
    -- No foreign key: an id in the content may name nobody; readers join and skip it.
    user_id    bigint not null,
    position   bigint not null,
    constraint message_mention_pkey primary key (message_id, user_id)
);

-- Mentioned roles, in the order the message named them.
create table message_mention_role (
    message_id bigint not null constraint message_mention_role_message_id_fkey
                   references message (message_id) on delete cascade,
    -- No foreign key: Discord keeps the id of a role deleted later.
    role_id    bigint not null,
    position   bigint not null,
    constraint message_mention_role_pkey primary key (message_id, role_id)
);

create table reaction (
    -- Insertion order, so reactions list in first-reacted order without comparing timestamps.
    -- INTEGER PRIMARY KEY aliases the rowid, which SQLite assigns as max + 1.
    reaction_id integer not null constraint reaction_pkey primary key,
    message_id  bigint not null constraint reaction_message_id_fkey
                    references message (message_id) on delete cascade,
    user_id     bigint not null constraint reaction_user_id_fkey references "user" (user_id) on delete cascade,
    -- Emoji key: the unicode text, or `name:id` for a custom emoji.
    emoji       text   not null,
    created_at  bigint not null,
    -- Also the index for a message's reactions and for reactors of one emoji.
    constraint reaction_message_emoji_user_key unique (message_id, emoji, user_id)
);
create index reaction_user_id_idx on reaction (user_id);

create table invite (
    code       text    not null constraint invite_pkey primary key,
    guild_id   bigint  not null constraint invite_guild_id_fkey references guild (guild_id) on delete cascade,
    channel_id bigint  not null constraint invite_channel_id_fkey
                   references channel (channel_id) on delete cascade,
    -- NULL once the inviter's account is gone; the invite stays usable.
    inviter_id bigint           constraint invite_inviter_id_fkey references "user" (user_id) on delete set null,
    uses       bigint  not null default 0,
    -- 0 = unlimited.
    max_uses   bigint  not null default 0,
    -- Seconds; 0 = never expires.
    max_age    bigint  not null default 0,
    temporary  boolean not null default false,
    created_at bigint  not null
);
create index invite_guild_id_idx on invite (guild_id);
create index invite_channel_id_idx on invite (channel_id);
