//! ChannelRepo.

use concord_core::id::Id;
use concord_core::model::channel::{ChannelType, OverwriteType, PermissionOverwrite};
use concord_core::permissions::Permissions;

use crate::common::{channel, conformance, raw, Ctx};

conformance!(
    insert_and_read_channel,
    guild_channels_by_position_then_id,
    update_channel,
    delete_channel
);

async fn insert_and_read_channel(ctx: Ctx) {
    let owner = ctx.user(10, "owner").await;
    let guild = ctx.guild(100, owner).await;
    let mut ch = channel(
        150,
        100,
        ChannelType::GuildAnnouncement,
        "news",
        5,
        Some(101),
    );
    ch.topic = Some("what's new".to_owned());
    ch.nsfw = true;
    ch.rate_limit_per_user = 30;
    ch.flags = 1 << 4;
    ch.permission_overwrites = vec![
        PermissionOverwrite {
            allow: Permissions::VIEW_CHANNEL,
            deny: Permissions::SEND_MESSAGES,
            id: guild.cast(),
            kind: OverwriteType::Role,
        },
        PermissionOverwrite {
            allow: Permissions::SEND_MESSAGES | Permissions::ADMINISTRATOR,
            deny: Permissions::empty(),
            id: owner.cast(),
            kind: OverwriteType::Member,
        },
    ];
    ctx.store.insert_channel(&ch).await.unwrap();
    assert_eq!(ctx.store.channel(ch.id).await.unwrap(), Some(ch.clone()));

    let voice = channel(160, 100, ChannelType::GuildVoice, "Voice", 0, None);
    ctx.store.insert_channel(&voice).await.unwrap();
    assert_eq!(ctx.store.channel(voice.id).await.unwrap(), Some(voice));

    assert!(ctx.store.channel(Id::new(999)).await.unwrap().is_none());
    // The guild fixture's text channel starts without messages.
    assert_eq!(
        ctx.store
            .channel(Id::new(102))
            .await
            .unwrap()
            .expect("exists")
            .last_message_id,
        None
    );
}

async fn guild_channels_by_position_then_id(ctx: Ctx) {
    let owner = ctx.user(10, "owner").await;
    let guild = ctx.guild(100, owner).await;
    let other = ctx.guild(200, owner).await;
    for (id, position) in [(190, 2), (180, 1), (170, 2), (160, -1)] {
        ctx.store
            .insert_channel(&channel(
                id,
                100,
                ChannelType::GuildText,
                "c",
                position,
                None,
            ))
            .await
            .unwrap();
    }
    let channels = ctx.store.guild_channels(guild).await.unwrap();
    assert_eq!(
        raw(channels.iter().map(|c| c.id)),
        vec![160, 101, 102, 180, 170, 190]
    );
    assert_eq!(
        raw(ctx
            .store
            .guild_channels(other)
            .await
            .unwrap()
            .iter()
            .map(|c| c.id)),
        vec![201, 202]
    );
    assert!(ctx
        .store
        .guild_channels(Id::new(999))
        .await
        .unwrap()
        .is_empty());
}

async fn update_channel(ctx: Ctx) {
    let owner = ctx.user(10, "owner").await;
    ctx.guild(100, owner).await;
    let message = ctx.message(1000, Id::new(102), owner, "hi").await;
    let mut ch = ctx
        .store
        .channel(Id::new(102))
        .await
        .unwrap()
        .expect("exists");
    assert_eq!(ch.last_message_id, Some(message));

    ch.name = "renamed".to_owned();
    ch.topic = Some("topic".to_owned());
    ch.position = 7;
    ch.nsfw = true;
    ch.parent_id = None;
    ch.rate_limit_per_user = 10;
    ch.kind = ChannelType::GuildAnnouncement;
    ch.permission_overwrites = vec![PermissionOverwrite {
        allow: Permissions::empty(),
        deny: Permissions::VIEW_CHANNEL,
        id: Id::new(100),
        kind: OverwriteType::Role,
    }];
    // Not the caller's to change: ignored.
    let mut sent = ch.clone();
    sent.last_message_id = None;
    assert!(ctx.store.update_channel(&sent).await.unwrap());
    assert_eq!(ctx.store.channel(ch.id).await.unwrap(), Some(ch.clone()));

    ch.topic = None;
    ch.permission_overwrites.clear();
    assert!(ctx.store.update_channel(&ch).await.unwrap());
    assert_eq!(ctx.store.channel(ch.id).await.unwrap(), Some(ch.clone()));

    let ghost = channel(999, 100, ChannelType::GuildText, "ghost", 0, None);
    assert!(!ctx.store.update_channel(&ghost).await.unwrap());
    assert!(ctx.store.channel(ghost.id).await.unwrap().is_none());
}

async fn delete_channel(ctx: Ctx) {
    let owner = ctx.user(10, "owner").await;
    let guild = ctx.guild(100, owner).await;
    let sibling = channel(103, 100, ChannelType::GuildVoice, "Voice", 1, Some(101));
    ctx.store.insert_channel(&sibling).await.unwrap();
    let message = ctx.message(1000, Id::new(102), owner, "hi").await;
    ctx.store.add_reaction(message, owner, "👍").await.unwrap();

    // Deleting the category orphans its children.
    assert!(ctx.store.delete_channel(Id::new(101)).await.unwrap());
    assert!(ctx.store.channel(Id::new(101)).await.unwrap().is_none());
    for child in [102, 103] {
        let ch = ctx
            .store
            .channel(Id::new(child))
            .await
            .unwrap()
            .expect("child kept");
        assert_eq!(ch.parent_id, None);
    }
    assert!(ctx
        .store
        .message(Id::new(102), message, owner)
        .await
        .unwrap()
        .is_some());

    // Deleting a text channel removes its messages (and their reactions) and the system channel.
    assert!(ctx.store.delete_channel(Id::new(102)).await.unwrap());
    assert!(ctx
        .store
        .message(Id::new(102), message, owner)
        .await
        .unwrap()
        .is_none());
    assert_eq!(ctx.count("message").await, 0);
    assert_eq!(ctx.count("reaction").await, 0);
    let g = ctx.store.guild(guild).await.unwrap().expect("guild kept");
    assert_eq!(g.system_channel_id, None);
    assert_eq!(
        raw(ctx
            .store
            .guild_channels(guild)
            .await
            .unwrap()
            .iter()
            .map(|c| c.id)),
        vec![103]
    );

    assert!(!ctx.store.delete_channel(Id::new(102)).await.unwrap());
    assert!(!ctx.store.delete_channel(Id::new(999)).await.unwrap());
}
