//! InviteRepo.

use std::sync::Arc;

use concord_core::id::Id;
use concord_core::model::ChannelType;
use concord_core::repo::{constraint, NewInvite, RepoError};
use concord_core::timestamp::Timestamp;

use crate::common::{conformance, Ctx};

conformance!(
    insert_and_read_invite,
    duplicate_code_conflicts,
    use_invite_respects_cap,
    use_invite_is_atomic
);

const CREATED: Timestamp = Timestamp::from_unix_micros(1_700_000_000_000_000);

fn new_invite(code: &str, max_uses: u32, max_age: u32) -> NewInvite {
    NewInvite {
        channel_id: Id::new(102),
        code: code.to_owned(),
        created_at: CREATED,
        guild_id: Id::new(100),
        inviter_id: Id::new(10),
        max_age,
        max_uses,
        temporary: false,
    }
}

async fn setup(ctx: &Ctx) {
    let owner = ctx.user(10, "owner").await;
    ctx.guild(100, owner).await;
}

async fn insert_and_read_invite(ctx: Ctx) {
    setup(&ctx).await;
    let invite = NewInvite {
        temporary: true,
        ..new_invite("abcDEF12", 5, 3600)
    };
    ctx.store.insert_invite(&invite).await.unwrap();

    let got = ctx.store.invite("abcDEF12").await.unwrap().expect("exists");
    assert_eq!(got.code, "abcDEF12");
    assert_eq!(got.kind, 0);
    assert_eq!(got.guild_id.get(), 100);
    assert_eq!(got.guild.id.get(), 100);
    assert_eq!(got.guild.name, "guild 100");
    assert!(got.guild.features.is_empty());
    assert_eq!(got.guild.verification_level, 0);
    assert_eq!(got.guild.nsfw_level, 0);
    assert_eq!(got.guild.icon, None);
    assert_eq!(got.channel.id.get(), 102);
    assert_eq!(got.channel.name, "general");
    assert_eq!(got.channel.kind, ChannelType::GuildText);
    assert_eq!(
        got.inviter.as_ref().map(|u| u.username.as_str()),
        Some("owner")
    );
    assert_eq!(
        got.expires_at,
        Some(Timestamp::from_unix_micros(1_700_003_600_000_000))
    );
    assert_eq!(got.approximate_member_count, None);
    let meta = got.metadata.expect("metadata");
    assert_eq!(meta.created_at, CREATED);
    assert_eq!(meta.max_age, 3600);
    assert_eq!(meta.max_uses, 5);
    assert_eq!(meta.uses, 0);
    assert!(meta.temporary);

    // Codes are case-sensitive.
    assert!(ctx.store.invite("abcdef12").await.unwrap().is_none());

    ctx.store
        .insert_invite(&new_invite("forever", 0, 0))
        .await
        .unwrap();
    let forever = ctx.store.invite("forever").await.unwrap().expect("exists");
    assert_eq!(forever.expires_at, None);
    assert!(!forever.metadata.expect("metadata").temporary);
}

async fn duplicate_code_conflicts(ctx: Ctx) {
    setup(&ctx).await;
    ctx.store
        .insert_invite(&new_invite("same", 0, 0))
        .await
        .unwrap();
    let err = ctx
        .store
        .insert_invite(&new_invite("same", 3, 60))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RepoError::Conflict(c) if c == constraint::INVITE_CODE),
        "{err:?}"
    );
    assert!(ctx.store.invite("missing").await.unwrap().is_none());
}

async fn use_invite_respects_cap(ctx: Ctx) {
    setup(&ctx).await;
    ctx.store
        .insert_invite(&new_invite("two", 2, 0))
        .await
        .unwrap();
    assert!(ctx.store.use_invite("two").await.unwrap());
    assert!(ctx.store.use_invite("two").await.unwrap());
    assert!(!ctx.store.use_invite("two").await.unwrap());
    assert_eq!(
        ctx.store
            .invite("two")
            .await
            .unwrap()
            .and_then(|i| i.metadata)
            .map(|m| m.uses),
        Some(2)
    );

    ctx.store
        .insert_invite(&new_invite("unlimited", 0, 0))
        .await
        .unwrap();
    for _ in 0..5 {
        assert!(ctx.store.use_invite("unlimited").await.unwrap());
    }
    assert_eq!(
        ctx.store
            .invite("unlimited")
            .await
            .unwrap()
            .and_then(|i| i.metadata)
            .map(|m| m.uses),
        Some(5)
    );

    assert!(!ctx.store.use_invite("missing").await.unwrap());
}

async fn use_invite_is_atomic(ctx: Ctx) {
    setup(&ctx).await;
    ctx.store
        .insert_invite(&new_invite("race", 5, 0))
        .await
        .unwrap();
    let store: Arc<_> = ctx.store.clone();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.use_invite("race").await.unwrap() })
        })
        .collect();
    let mut granted = 0;
    for task in tasks {
        granted += usize::from(task.await.unwrap());
    }
    assert_eq!(granted, 5);
    assert_eq!(
        ctx.store
            .invite("race")
            .await
            .unwrap()
            .and_then(|i| i.metadata)
            .map(|m| m.uses),
        Some(5)
    );
}
