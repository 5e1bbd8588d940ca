//! GuildRepo.

use concord_core::id::{GuildId, Id};
use concord_core::permissions::Permissions;
use concord_core::repo::{GuildPatch, NewInvite};
use concord_core::timestamp::Timestamp;

use crate::common::{conformance, raw, Ctx, GUILD_CREATED_AT};

conformance!(
    create_guild_and_read,
    roles_ordered_by_position_then_id,
    update_guild_applies_patch,
    delete_guild_cascades,
    user_guilds_pages,
    create_guild_is_atomic,
);

async fn create_guild_and_read(ctx: Ctx) {
    let owner = ctx.user(10, "owner").await;
    let id = ctx.guild(100, owner).await;

    let guild = ctx.store.guild(id).await.unwrap().expect("exists");
    assert_eq!(guild.id, id);
    assert_eq!(guild.name, "guild 100");
    assert_eq!(guild.owner_id, owner);
    assert_eq!(guild.system_channel_id.map(Id::get), Some(102));
    assert_eq!(guild.afk_channel_id, None);
    assert_eq!(guild.afk_timeout, 300);
    assert_eq!(guild.application_id, None);
    assert_eq!(guild.banner, None);
    assert_eq!(guild.default_message_notifications, 0);
    assert_eq!(guild.description, None);
    assert_eq!(guild.discovery_splash, None);
    assert!(guild.emojis.is_empty());
    assert_eq!(guild.explicit_content_filter, 0);
    assert!(guild.features.is_empty());
    assert_eq!(guild.icon, None);
    assert_eq!(guild.incidents_data, None);
    assert_eq!(guild.max_members, 500_000);
    assert_eq!(guild.max_presences, None);
    assert_eq!(guild.max_stage_video_channel_users, 50);
    assert_eq!(guild.max_video_channel_users, 25);
    assert_eq!(guild.mfa_level, 0);
    assert_eq!(guild.nsfw_level, 0);
    assert_eq!(guild.preferred_locale, "en-US");
    assert!(!guild.premium_progress_bar_enabled);
    assert_eq!(guild.premium_subscription_count, 0);
    assert_eq!(guild.premium_tier, 0);
    assert_eq!(guild.public_updates_channel_id, None);
    assert_eq!(guild.region, "deprecated");
    assert_eq!(guild.rules_channel_id, None);
    assert_eq!(guild.safety_alerts_channel_id, None);
    assert_eq!(guild.splash, None);
    assert!(guild.stickers.is_empty());
    assert_eq!(guild.system_channel_flags, 0);
    assert_eq!(guild.vanity_url_code, None);
    assert_eq!(guild.verification_level, 0);
    assert_eq!(guild.widget_channel_id, None);
    assert!(!guild.widget_enabled);

    assert_eq!(guild.roles.len(), 1);
    let everyone = &guild.roles[0];
    assert_eq!(everyone.id, id.cast());
    assert_eq!(everyone.name, "@everyone");
    assert_eq!(everyone.permissions, Permissions::DEFAULT_EVERYONE);
    assert_eq!(everyone.position, 0);
    assert_eq!(everyone.color, 0);
    assert_eq!(everyone.colors.primary_color, 0);
    assert_eq!(everyone.colors.secondary_color, None);
    assert_eq!(everyone.colors.tertiary_color, None);
    assert!(!everyone.hoist && !everyone.managed && !everyone.mentionable);
    assert_eq!(everyone.flags, 0);
    assert_eq!(everyone.icon, None);
    assert_eq!(everyone.unicode_emoji, None);

    let channels = ctx.store.guild_channels(id).await.unwrap();
    assert_eq!(raw(channels.iter().map(|c| c.id)), vec![101, 102]);
    assert_eq!(channels[1].parent_id.map(Id::get), Some(101));

    // The owner joined at creation time, with no stored roles (@everyone is implicit).
    let member = ctx
        .store
        .member(id, owner)
        .await
        .unwrap()
        .expect("owner is a member");
    assert_eq!(member.joined_at, Some(GUILD_CREATED_AT));
    assert_eq!(member.roles, vec![]);
    assert_eq!(ctx.store.member_count(id).await.unwrap(), 1);
    assert_eq!(ctx.store.user_guild_ids(owner).await.unwrap(), vec![id]);
    assert_eq!(ctx.count("member_role").await, 0);

    assert!(ctx.store.guild(Id::new(999)).await.unwrap().is_none());
}

async fn roles_ordered_by_position_then_id(ctx: Ctx) {
    let owner = ctx.user(10, "owner").await;
    let id = ctx.guild(100, owner).await;
    ctx.role(300, id, "mods", 2).await;
    ctx.role(200, id, "admins", 3).await;
    ctx.role(250, id, "b", 1).await;
    ctx.role(240, id, "a", 1).await;
    let guild = ctx.store.guild(id).await.unwrap().expect("exists");
    assert_eq!(
        raw(guild.roles.iter().map(|r| r.id)),
        vec![100, 240, 250, 300, 200]
    );
    assert_eq!(guild.roles[4].permissions, Permissions::ADMINISTRATOR);
}

async fn update_guild_applies_patch(ctx: Ctx) {
    let owner = ctx.user(10, "owner").await;
    let heir = ctx.user(11, "heir").await;
    let id = ctx.guild(100, owner).await;
    let before = ctx.store.guild(id).await.unwrap().expect("exists");

    let patch = GuildPatch {
        afk_channel_id: Some(Some(Id::new(101))),
        afk_timeout: Some(900),
        default_message_notifications: Some(1),
        description: Some(Some("a place".to_owned())),
        explicit_content_filter: Some(2),
        name: Some("renamed".to_owned()),
        owner_id: Some(heir),
        preferred_locale: Some("de".to_owned()),
        system_channel_id: Some(None),
        verification_level: Some(3),
    };
    let after = ctx
        .store
        .update_guild(id, &patch)
        .await
        .unwrap()
        .expect("exists");
    assert_eq!(after.afk_channel_id.map(Id::get), Some(101));
    assert_eq!(after.afk_timeout, 900);
    assert_eq!(after.default_message_notifications, 1);
    assert_eq!(after.description.as_deref(), Some("a place"));
    assert_eq!(after.explicit_content_filter, 2);
    assert_eq!(after.name, "renamed");
    assert_eq!(after.owner_id, heir);
    assert_eq!(after.preferred_locale, "de");
    assert_eq!(after.system_channel_id, None);
    assert_eq!(after.verification_level, 3);
    assert_eq!(after.roles, before.roles);
    assert_eq!(ctx.store.guild(id).await.unwrap(), Some(after.clone()));

    // An empty patch changes nothing; a partial one only its fields.
    assert_eq!(
        ctx.store
            .update_guild(id, &GuildPatch::default())
            .await
            .unwrap(),
        Some(after.clone())
    );
    let patch = GuildPatch {
        description: Some(None),
        ..GuildPatch::default()
    };
    let cleared = ctx
        .store
        .update_guild(id, &patch)
        .await
        .unwrap()
        .expect("exists");
    assert_eq!(cleared.description, None);
    assert_eq!(cleared.name, "renamed");
    assert_eq!(cleared.afk_channel_id.map(Id::get), Some(101));

    assert!(ctx
        .store
        .update_guild(Id::new(999), &GuildPatch::default())
        .await
        .unwrap()
        .is_none());
}

async fn delete_guild_cascades(ctx: Ctx) {
    let owner = ctx.user(10, "owner").await;
    let other = ctx.user(11, "other").await;
    let id = ctx.guild(100, owner).await;
    let kept = ctx.guild(200, other).await;
    ctx.store
        .add_member(id, other, Timestamp::now())
        .await
        .unwrap();
    ctx.role(150, id, "mods", 1).await;
    ctx.grant(id, other, 150).await;
    let message = ctx.message(1000, Id::new(102), owner, "hello").await;
    ctx.store.add_reaction(message, other, "👍").await.unwrap();
    let kept_message = ctx.message(2000, Id::new(202), other, "elsewhere").await;
    let invite = NewInvite {
        channel_id: Id::new(102),
        code: "abc".to_owned(),
        created_at: Timestamp::now(),
        guild_id: id,
        inviter_id: owner,
        max_age: 0,
        max_uses: 0,
        temporary: false,
    };
    ctx.store.insert_invite(&invite).await.unwrap();

    assert!(ctx.store.delete_guild(id).await.unwrap());
    assert!(ctx.store.guild(id).await.unwrap().is_none());
    assert!(ctx.store.channel(Id::new(101)).await.unwrap().is_none());
    assert!(ctx.store.channel(Id::new(102)).await.unwrap().is_none());
    assert!(ctx.store.guild_channels(id).await.unwrap().is_empty());
    assert!(ctx.store.member(id, owner).await.unwrap().is_none());
    assert_eq!(ctx.store.member_count(id).await.unwrap(), 0);
    assert!(ctx
        .store
        .message(Id::new(102), message, owner)
        .await
        .unwrap()
        .is_none());
    assert!(ctx.store.invite("abc").await.unwrap().is_none());
    assert_eq!(ctx.store.user_guild_ids(other).await.unwrap(), vec![kept]);
    let remaining = [
        ("role WHERE guild_id = 100", 0),
        ("member_role", 0),
        ("reaction", 0),
        ("invite", 0),
        ("message", 1),
        ("channel", 2),
        ("member", 1),
    ];
    for (table, expected) in remaining {
        assert_eq!(ctx.count(table).await, expected, "{table}");
    }

    // The other guild is untouched.
    assert!(ctx.store.guild(kept).await.unwrap().is_some());
    assert!(ctx
        .store
        .message(Id::new(202), kept_message, other)
        .await
        .unwrap()
        .is_some());

    assert!(!ctx.store.delete_guild(id).await.unwrap());
}

async fn user_guilds_pages(ctx: Ctx) {
    let owner = ctx.user(10, "owner").await;
    let member = ctx.user(11, "member").await;
    // Created out of order; ids 100..=500 step 100.
    for id in [300, 100, 500, 200, 400] {
        ctx.guild(id, owner).await;
    }
    for id in [100, 200, 400, 500] {
        assert!(ctx
            .store
            .add_member(Id::new(id), member, Timestamp::now())
            .await
            .unwrap());
    }
    let page = |before: Option<u64>, after: Option<u64>, limit: u32| {
        let store = ctx.store.clone();
        async move {
            let guilds = store
                .user_guilds(member, before.map(Id::new), after.map(Id::new), limit)
                .await
                .unwrap();
            raw(guilds.iter().map(|g| g.id))
        }
    };
    assert_eq!(page(None, None, 200).await, vec![100, 200, 400, 500]);
    assert_eq!(page(None, None, 2).await, vec![100, 200]);
    assert_eq!(page(None, Some(200), 200).await, vec![400, 500]);
    assert_eq!(page(None, Some(100), 1).await, vec![200]);
    assert_eq!(page(Some(400), None, 200).await, vec![100, 200]);
    assert_eq!(page(Some(500), Some(100), 200).await, vec![200, 400]);
    assert_eq!(page(None, Some(500), 200).await, Vec::<u64>::new());
    assert_eq!(page(None, None, 0).await, Vec::<u64>::new());

    // Full guild objects, roles included.
    let guilds = ctx.store.user_guilds(member, None, None, 1).await.unwrap();
    assert_eq!(guilds[0].roles.len(), 1);
    assert_eq!(guilds[0].name, "guild 100");

    let ids: Vec<GuildId> = ctx.store.user_guild_ids(member).await.unwrap();
    assert_eq!(raw(ids), vec![100, 200, 400, 500]);
    assert_eq!(
        raw(ctx.store.user_guild_ids(owner).await.unwrap()),
        vec![100, 200, 300, 400, 500]
    );
    assert!(ctx
        .store
        .user_guild_ids(Id::new(999))
        .await
        .unwrap()
        .is_empty());
}

async fn create_guild_is_atomic(ctx: Ctx) {
    let owner = ctx.user(10, "owner").await;
    ctx.guild(100, owner).await;
    // Channel 102 already exists, so the second guild's insert fails after its guild row.
    let mut guild = crate::common::new_guild(200, owner);
    guild.channels.push(crate::common::channel(
        102,
        200,
        concord_core::model::ChannelType::GuildText,
        "dup",
        1,
        None,
    ));
    assert!(ctx.store.create_guild(&guild).await.is_err());
    assert!(ctx.store.guild(Id::new(200)).await.unwrap().is_none());
    assert!(ctx.store.channel(Id::new(201)).await.unwrap().is_none());
    assert_eq!(
        raw(ctx.store.user_guild_ids(owner).await.unwrap()),
        vec![100]
    );
}
