//! MessageRepo: messages, pages, replies and edits.

use concord_core::id::{ChannelId, Id, MessageId, UserId};
use concord_core::repo::{MessagePage, NewMessage};
use concord_core::timestamp::Timestamp;

use crate::common::{conformance, new_message, raw, Ctx};

conformance!(
    insert_and_read_full_message,
    nonce_round_trips_json,
    pages_are_newest_first,
    replies_carry_their_target,
    edit_message_replaces_content_and_mentions,
    delete_message,
);

const CHANNEL: u64 = 102;

/// Owner 10 with guild 100 (text channel 102).
async fn setup(ctx: &Ctx) -> (UserId, ChannelId) {
    let owner = ctx.user(10, "owner").await;
    ctx.guild(100, owner).await;
    (owner, Id::new(CHANNEL))
}

async fn insert_and_read_full_message(ctx: Ctx) {
    let (owner, channel) = setup(&ctx).await;
    let bob = ctx.user(11, "bob").await;
    let carol = ctx.user(12, "carol").await;
    // Snowflake of 2023-11-14T22:13:20.123Z (worker/process/sequence bits zero).
    let id: MessageId = Id::new((1_700_000_000_123 - 1_420_070_400_000) << 22);
    let new = NewMessage {
        guild_id: Some(Id::new(100)),
        kind: 0,
        mention_everyone: true,
        mention_roles: vec![Id::new(100), Id::new(7)],
        // Order given: carol, an unknown id (skipped), bob.
        mentions: vec![carol, Id::new(999), bob],
        nonce: Some("\"n-1\"".to_owned()),
        tts: true,
        ..new_message(id.get(), channel, owner, "hello @everyone")
    };
    ctx.store.insert_message(&new).await.unwrap();

    let m = ctx
        .store
        .message(channel, id, owner)
        .await
        .unwrap()
        .expect("exists");
    assert_eq!(m.id, id);
    assert_eq!(m.channel_id, channel);
    assert_eq!(m.guild_id.map(Id::get), Some(100));
    assert_eq!(m.author.id, owner);
    assert_eq!(m.author.username, "owner");
    assert_eq!(m.content, "hello @everyone");
    assert!(m.mention_everyone);
    assert!(m.tts);
    assert_eq!(m.kind, 0);
    assert_eq!(raw(m.mentions.iter().map(|u| u.id)), vec![12, 11]);
    assert_eq!(m.mentions[0].username, "carol");
    assert_eq!(raw(m.mention_roles.iter().copied()), vec![100, 7]);
    assert_eq!(m.nonce, Some(serde_json::json!("n-1")));
    assert_eq!(m.timestamp, Timestamp::from_unix_ms(1_700_000_000_123));
    assert_eq!(m.timestamp.to_string(), "2023-11-14T22:13:20.123000+00:00");
    assert_eq!(m.edited_timestamp, None);
    assert!(!m.pinned);
    assert_eq!(m.flags, 0);
    assert!(m.attachments.is_empty() && m.embeds.is_empty() && m.components.is_empty());
    assert!(m.reactions.is_empty());
    assert_eq!(m.member, None);
    assert_eq!(m.message_reference, None);
    assert_eq!(m.referenced_message, None);

    // The channel's last message moved; an older insert does not move it back.
    assert_eq!(
        ctx.store
            .channel(channel)
            .await
            .unwrap()
            .expect("channel")
            .last_message_id,
        Some(id)
    );
    ctx.message(5, channel, owner, "late").await;
    assert_eq!(
        ctx.store
            .channel(channel)
            .await
            .unwrap()
            .expect("channel")
            .last_message_id,
        Some(id)
    );

    // Wrong channel, unknown id.
    assert!(ctx
        .store
        .message(Id::new(101), id, owner)
        .await
        .unwrap()
        .is_none());
    assert!(ctx
        .store
        .message(channel, Id::new(12345), owner)
        .await
        .unwrap()
        .is_none());
}

async fn nonce_round_trips_json(ctx: Ctx) {
    let (owner, channel) = setup(&ctx).await;
    for (id, nonce, expected) in [
        (
            1,
            Some("1234567890123"),
            Some(serde_json::json!(1234567890123_u64)),
        ),
        (2, Some("\"abc\""), Some(serde_json::json!("abc"))),
        (3, None, None),
    ] {
        let new = NewMessage {
            nonce: nonce.map(str::to_owned),
            ..new_message(id, channel, owner, "x")
        };
        ctx.store.insert_message(&new).await.unwrap();
        let m = ctx
            .store
            .message(channel, Id::new(id), owner)
            .await
            .unwrap()
            .expect("exists");
        assert_eq!(m.nonce, expected);
    }
}

async fn pages_are_newest_first(ctx: Ctx) {
    let (owner, channel) = setup(&ctx).await;
    for id in 101..=110 {
        ctx.message(id, channel, owner, &format!("m{id}")).await;
    }
    // Another channel's messages never leak in.
    ctx.message(105_000, Id::new(101), owner, "other").await;
    ctx.message(50, Id::new(101), owner, "other").await;

    let page = |page: MessagePage, limit: u32| {
        let store = ctx.store.clone();
        async move {
            raw(store
                .messages(channel, page, limit, owner)
                .await
                .unwrap()
                .iter()
                .map(|m| m.id))
        }
    };
    let at = |id: u64| -> MessageId { Id::new(id) };
    assert_eq!(page(MessagePage::Latest, 3).await, vec![110, 109, 108]);
    assert_eq!(
        page(MessagePage::Latest, 100).await,
        (101..=110).rev().collect::<Vec<_>>()
    );
    assert_eq!(page(MessagePage::Latest, 0).await, Vec::<u64>::new());
    assert_eq!(
        page(MessagePage::Before(at(105)), 3).await,
        vec![104, 103, 102]
    );
    assert_eq!(page(MessagePage::Before(at(102)), 50).await, vec![101]);
    assert_eq!(
        page(MessagePage::Before(at(101)), 50).await,
        Vec::<u64>::new()
    );
    // After: the messages right after the id, still newest first.
    assert_eq!(
        page(MessagePage::After(at(105)), 3).await,
        vec![108, 107, 106]
    );
    assert_eq!(page(MessagePage::After(at(108)), 5).await, vec![110, 109]);
    assert_eq!(
        page(MessagePage::After(at(110)), 5).await,
        Vec::<u64>::new()
    );
    assert_eq!(page(MessagePage::After(at(1)), 2).await, vec![102, 101]);
    // Around: centre included, the rest split evenly.
    assert_eq!(
        page(MessagePage::Around(at(105)), 4).await,
        vec![107, 106, 105, 104]
    );
    assert_eq!(
        page(MessagePage::Around(at(105)), 5).await,
        vec![107, 106, 105, 104, 103]
    );
    assert_eq!(page(MessagePage::Around(at(105)), 1).await, vec![105]);
    assert_eq!(page(MessagePage::Around(at(110)), 4).await, vec![110, 109]);
    assert_eq!(
        page(MessagePage::Around(at(101)), 4).await,
        vec![103, 102, 101]
    );
    // A deleted centre still centres the page.
    assert!(ctx.store.delete_message(channel, at(105)).await.unwrap());
    assert_eq!(
        page(MessagePage::Around(at(105)), 4).await,
        vec![107, 106, 104, 103]
    );

    // Every message in a page is complete.
    let full = ctx
        .store
        .messages(channel, MessagePage::Latest, 2, owner)
        .await
        .unwrap();
    assert_eq!(full[0].content, "m110");
    assert_eq!(full[0].author.username, "owner");

    assert!(ctx
        .store
        .messages(Id::new(999), MessagePage::Latest, 10, owner)
        .await
        .unwrap()
        .is_empty());
}

async fn replies_carry_their_target(ctx: Ctx) {
    let (owner, channel) = setup(&ctx).await;
    let bob = ctx.user(11, "bob").await;
    let original = NewMessage {
        mentions: vec![bob],
        ..new_message(201, channel, bob, "original")
    };
    ctx.store.insert_message(&original).await.unwrap();
    ctx.store
        .add_reaction(Id::new(201), owner, "👍")
        .await
        .unwrap();
    let reply = |id: u64, target: u64| NewMessage {
        guild_id: Some(Id::new(100)),
        kind: 19,
        referenced_message_id: Some(Id::new(target)),
        ..new_message(id, channel, owner, &format!("reply {id}"))
    };
    ctx.store.insert_message(&reply(202, 201)).await.unwrap();
    ctx.store.insert_message(&reply(203, 202)).await.unwrap();
    for id in 204..=206 {
        ctx.message(id, channel, owner, "filler").await;
    }
    ctx.store.insert_message(&reply(207, 201)).await.unwrap();

    let m = ctx
        .store
        .message(channel, Id::new(202), owner)
        .await
        .unwrap()
        .expect("exists");
    assert_eq!(m.kind, 19);
    let reference = m.message_reference.as_ref().expect("reference");
    assert_eq!(reference.message_id.map(Id::get), Some(201));
    assert_eq!(reference.channel_id, Some(channel));
    assert_eq!(reference.guild_id.map(Id::get), Some(100));
    assert_eq!(reference.kind, 0);
    let target = m
        .referenced_message
        .clone()
        .expect("reply")
        .expect("target exists");
    assert_eq!(target.id.get(), 201);
    assert_eq!(target.content, "original");
    assert_eq!(target.author.id, bob);
    assert_eq!(raw(target.mentions.iter().map(|u| u.id)), vec![11]);
    assert_eq!(target.reactions.len(), 1);
    assert_eq!(target.referenced_message, None);

    // A reply to a reply: the target keeps its reference but not its own target.
    let m = ctx
        .store
        .message(channel, Id::new(203), owner)
        .await
        .unwrap()
        .expect("exists");
    let target = m
        .referenced_message
        .clone()
        .expect("reply")
        .expect("target exists");
    assert_eq!(target.id.get(), 202);
    assert_eq!(
        target
            .message_reference
            .and_then(|r| r.message_id)
            .map(Id::get),
        Some(201)
    );
    assert_eq!(target.referenced_message, None);

    // In a page, targets come from the page itself (203 → 202) or are fetched (207 → 201).
    let page = ctx
        .store
        .messages(channel, MessagePage::Latest, 100, owner)
        .await
        .unwrap();
    let find = |id: u64| page.iter().find(|m| m.id.get() == id).expect("in page");
    assert_eq!(
        find(207)
            .referenced_message
            .clone()
            .flatten()
            .map(|t| t.id.get()),
        Some(201)
    );
    assert_eq!(
        find(203)
            .referenced_message
            .clone()
            .flatten()
            .map(|t| t.id.get()),
        Some(202)
    );
    assert_eq!(find(204).referenced_message, None);
    let small = ctx
        .store
        .messages(channel, MessagePage::Latest, 1, owner)
        .await
        .unwrap();
    assert_eq!(
        small[0]
            .referenced_message
            .clone()
            .flatten()
            .map(|t| t.content),
        Some("original".to_owned())
    );

    // Target deleted: Some(None), reference kept.
    assert!(ctx
        .store
        .delete_message(channel, Id::new(201))
        .await
        .unwrap());
    let m = ctx
        .store
        .message(channel, Id::new(202), owner)
        .await
        .unwrap()
        .expect("reply kept");
    assert_eq!(m.referenced_message, Some(None));
    assert_eq!(
        m.message_reference.and_then(|r| r.message_id).map(Id::get),
        Some(201)
    );
    let page = ctx
        .store
        .messages(channel, MessagePage::Latest, 100, owner)
        .await
        .unwrap();
    assert_eq!(
        page.iter()
            .find(|m| m.id.get() == 207)
            .expect("in page")
            .referenced_message,
        Some(None)
    );
}

async fn edit_message_replaces_content_and_mentions(ctx: Ctx) {
    let (owner, channel) = setup(&ctx).await;
    let bob = ctx.user(11, "bob").await;
    let carol = ctx.user(12, "carol").await;
    let new = NewMessage {
        mentions: vec![bob],
        mention_roles: vec![Id::new(5)],
        ..new_message(300, channel, owner, "hi bob")
    };
    ctx.store.insert_message(&new).await.unwrap();

    let edited_at = Timestamp::from_unix_micros(1_720_000_000_000_001);
    let mentions = [carol, bob];
    let changed = ctx.store.edit_message(
        channel,
        Id::new(300),
        "hi carol and all",
        &mentions,
        true,
        edited_at,
    );
    assert!(changed.await.unwrap());
    let m = ctx
        .store
        .message(channel, Id::new(300), owner)
        .await
        .unwrap()
        .expect("exists");
    assert_eq!(m.content, "hi carol and all");
    assert_eq!(raw(m.mentions.iter().map(|u| u.id)), vec![12, 11]);
    assert!(m.mention_everyone);
    assert_eq!(m.edited_timestamp, Some(edited_at));
    // Role mentions are not part of an edit.
    assert_eq!(raw(m.mention_roles.iter().copied()), vec![5]);

    let changed =
        ctx.store
            .edit_message(channel, Id::new(300), "plain", &[], false, Timestamp::now());
    assert!(changed.await.unwrap());
    let m = ctx
        .store
        .message(channel, Id::new(300), owner)
        .await
        .unwrap()
        .expect("exists");
    assert!(m.mentions.is_empty());
    assert!(!m.mention_everyone);

    // Unknown message, or the right id in the wrong channel.
    assert!(!ctx
        .store
        .edit_message(channel, Id::new(999), "x", &[], false, Timestamp::now())
        .await
        .unwrap());
    assert!(!ctx
        .store
        .edit_message(
            Id::new(101),
            Id::new(300),
            "x",
            &[],
            false,
            Timestamp::now()
        )
        .await
        .unwrap());
    let m = ctx
        .store
        .message(channel, Id::new(300), owner)
        .await
        .unwrap()
        .expect("exists");
    assert_eq!(m.content, "plain");
}

async fn delete_message(ctx: Ctx) {
    let (owner, channel) = setup(&ctx).await;
    let bob = ctx.user(11, "bob").await;
    let new = NewMessage {
        mentions: vec![bob],
        mention_roles: vec![Id::new(5)],
        ..new_message(300, channel, owner, "x")
    };
    ctx.store.insert_message(&new).await.unwrap();
    let kept = ctx.message(301, channel, owner, "kept").await;
    ctx.store
        .add_reaction(Id::new(300), bob, "👍")
        .await
        .unwrap();
    ctx.store.add_reaction(kept, bob, "👍").await.unwrap();

    // Wrong channel deletes nothing.
    assert!(!ctx
        .store
        .delete_message(Id::new(101), Id::new(300))
        .await
        .unwrap());
    assert!(ctx
        .store
        .delete_message(channel, Id::new(300))
        .await
        .unwrap());
    assert!(!ctx
        .store
        .delete_message(channel, Id::new(300))
        .await
        .unwrap());
    assert!(ctx
        .store
        .message(channel, Id::new(300), owner)
        .await
        .unwrap()
        .is_none());
    assert_eq!(ctx.count("reaction").await, 1);
    assert_eq!(ctx.count("message_mention").await, 0);
    assert_eq!(ctx.count("message_mention_role").await, 0);
    assert_eq!(
        ctx.store.reaction_emoji_count(Id::new(300)).await.unwrap(),
        0
    );
    assert!(ctx
        .store
        .message(channel, kept, owner)
        .await
        .unwrap()
        .is_some());
}
