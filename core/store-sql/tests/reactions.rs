//! MessageRepo: reactions.

use concord_core::id::{GenericId, Id, MessageId};
use concord_core::model::message::{Emoji, ReactionCountDetails};

use crate::common::{conformance, raw, Ctx};

conformance!(
    reactions_aggregate_per_emoji,
    reactors_page_by_user_id,
    add_and_remove_reaction
);

async fn reactions_aggregate_per_emoji(ctx: Ctx) {
    let owner = ctx.user(10, "owner").await;
    let alice = ctx.user(11, "alice").await;
    let bob = ctx.user(12, "bob").await;
    ctx.guild(100, owner).await;
    let channel = Id::new(102);
    let message = ctx.message(1000, channel, owner, "react to me").await;

    // First reactions decide the order: 👍, then blob, then 🎉.
    assert!(ctx.store.add_reaction(message, alice, "👍").await.unwrap());
    assert!(ctx
        .store
        .add_reaction(message, bob, "blob:123456789")
        .await
        .unwrap());
    assert!(ctx.store.add_reaction(message, bob, "👍").await.unwrap());
    assert!(ctx.store.add_reaction(message, alice, "🎉").await.unwrap());
    assert!(ctx.store.add_reaction(message, owner, "👍").await.unwrap());

    let as_alice = ctx
        .store
        .message(channel, message, alice)
        .await
        .unwrap()
        .expect("exists")
        .reactions;
    let names: Vec<_> = as_alice
        .iter()
        .map(|r| r.emoji.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(names, vec!["👍", "blob", "🎉"]);
    assert_eq!(
        as_alice.iter().map(|r| r.count).collect::<Vec<_>>(),
        vec![3, 1, 1]
    );
    assert_eq!(
        as_alice.iter().map(|r| r.me).collect::<Vec<_>>(),
        vec![true, false, true]
    );
    assert_eq!(
        as_alice[0].count_details,
        ReactionCountDetails {
            burst: 0,
            normal: 3
        }
    );
    assert_eq!(
        as_alice[0].emoji,
        Emoji {
            id: None,
            name: Some("👍".to_owned())
        }
    );
    let custom: GenericId = Id::new(123456789);
    assert_eq!(
        as_alice[1].emoji,
        Emoji {
            id: Some(custom),
            name: Some("blob".to_owned())
        }
    );
    assert!(as_alice
        .iter()
        .all(|r| !r.me_burst && r.burst_colors.is_empty()));

    // `me` follows the viewer, in single reads and pages alike.
    let as_bob = ctx
        .store
        .message(channel, message, bob)
        .await
        .unwrap()
        .expect("exists")
        .reactions;
    assert_eq!(
        as_bob.iter().map(|r| r.me).collect::<Vec<_>>(),
        vec![true, true, false]
    );
    let page = ctx
        .store
        .messages(
            channel,
            concord_core::repo::MessagePage::Latest,
            10,
            Id::new(999),
        )
        .await
        .unwrap();
    assert_eq!(
        page[0].reactions.iter().map(|r| r.me).collect::<Vec<_>>(),
        vec![false, false, false]
    );

    assert_eq!(ctx.store.reaction_emoji_count(message).await.unwrap(), 3);

    // Removing the last 🎉 drops the emoji; order of the others stays.
    assert!(ctx
        .store
        .remove_reaction(message, alice, "🎉")
        .await
        .unwrap());
    let reactions = ctx
        .store
        .message(channel, message, alice)
        .await
        .unwrap()
        .expect("exists")
        .reactions;
    assert_eq!(reactions.len(), 2);
    assert_eq!(ctx.store.reaction_emoji_count(message).await.unwrap(), 2);

    // Re-reacting after removal moves the emoji to the end (its first reaction is now later).
    assert!(ctx
        .store
        .remove_reaction(message, alice, "👍")
        .await
        .unwrap());
    assert!(ctx.store.remove_reaction(message, bob, "👍").await.unwrap());
    assert!(ctx
        .store
        .remove_reaction(message, owner, "👍")
        .await
        .unwrap());
    assert!(ctx.store.add_reaction(message, alice, "👍").await.unwrap());
    let reactions = ctx
        .store
        .message(channel, message, alice)
        .await
        .unwrap()
        .expect("exists")
        .reactions;
    let names: Vec<_> = reactions
        .iter()
        .map(|r| r.emoji.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(names, vec!["blob", "👍"]);
}

async fn reactors_page_by_user_id(ctx: Ctx) {
    let owner = ctx.user(50, "owner").await;
    ctx.guild(100, owner).await;
    let message = ctx.message(1000, Id::new(102), owner, "x").await;
    for id in [30, 10, 40, 20] {
        let user = ctx.user(id, &format!("user{id}")).await;
        ctx.store.add_reaction(message, user, "👍").await.unwrap();
    }
    ctx.store.add_reaction(message, owner, "🎉").await.unwrap();
    let page = |after: Option<u64>, limit: u32| {
        let store = ctx.store.clone();
        async move {
            let users = store
                .reactors(message, "👍", after.map(Id::new), limit)
                .await
                .unwrap();
            raw(users.iter().map(|u| u.id))
        }
    };
    assert_eq!(page(None, 100).await, vec![10, 20, 30, 40]);
    assert_eq!(page(None, 2).await, vec![10, 20]);
    assert_eq!(page(Some(20), 100).await, vec![30, 40]);
    assert_eq!(page(Some(40), 100).await, Vec::<u64>::new());
    let users = ctx.store.reactors(message, "🎉", None, 10).await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].username, "owner");
    assert!(ctx
        .store
        .reactors(message, "❓", None, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn add_and_remove_reaction(ctx: Ctx) {
    let owner = ctx.user(10, "owner").await;
    ctx.guild(100, owner).await;
    let message = ctx.message(1000, Id::new(102), owner, "x").await;
    let other = ctx.message(1001, Id::new(102), owner, "y").await;

    assert!(ctx.store.add_reaction(message, owner, "👍").await.unwrap());
    assert!(!ctx.store.add_reaction(message, owner, "👍").await.unwrap());
    // Same emoji on another message is a separate reaction.
    assert!(ctx.store.add_reaction(other, owner, "👍").await.unwrap());
    assert_eq!(ctx.store.reaction_emoji_count(message).await.unwrap(), 1);

    assert!(ctx
        .store
        .remove_reaction(message, owner, "👍")
        .await
        .unwrap());
    assert!(!ctx
        .store
        .remove_reaction(message, owner, "👍")
        .await
        .unwrap());
    assert!(!ctx
        .store
        .remove_reaction(message, owner, "🎉")
        .await
        .unwrap());
    assert_eq!(ctx.store.reaction_emoji_count(message).await.unwrap(), 0);
    assert_eq!(ctx.store.reaction_emoji_count(other).await.unwrap(), 1);

    // Unknown message: nothing to react to.
    let ghost: MessageId = Id::new(999);
    assert!(!ctx.store.add_reaction(ghost, owner, "👍").await.unwrap());
    assert_eq!(ctx.store.reaction_emoji_count(ghost).await.unwrap(), 0);
    assert!(ctx
        .store
        .reactors(ghost, "👍", None, 10)
        .await
        .unwrap()
        .is_empty());
}
