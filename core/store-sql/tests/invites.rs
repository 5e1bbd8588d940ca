//! InviteRepo.

use std::sync::Arc;

use concord_core::id::Id;
use concord_core::model::ChannelType;
use concord_core::repo::{constraint, InviteAcceptance, NewInvite, RepoError};
use concord_core::timestamp::Timestamp;

use crate::common::{conformance, Ctx};

conformance!(
    insert_and_read_invite,
    duplicate_code_conflicts,
    accept_invite_joins_and_counts_together,
    accept_invite_refuses_expired_and_exhausted,
    concurrent_accepts_respect_the_cap
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

async fn uses_of(ctx: &Ctx, code: &str) -> Option<u32> {
    ctx.store
        .invite(code)
        .await
        .unwrap()
        .and_then(|i| i.metadata)
        .map(|m| m.uses)
}

async fn accept_invite_joins_and_counts_together(ctx: Ctx) {
    setup(&ctx).await;
    let joiner = ctx.user(11, "joiner").await;
    ctx.store
        .insert_invite(&new_invite("join", 0, 0))
        .await
        .unwrap();
    let now = Timestamp::now();
    assert_eq!(
        ctx.store.accept_invite("join", joiner, now).await.unwrap(),
        InviteAcceptance::Joined(Id::new(100))
    );
    assert!(ctx
        .store
        .member(Id::new(100), joiner)
        .await
        .unwrap()
        .is_some());
    assert_eq!(uses_of(&ctx, "join").await, Some(1));

    // A second accept by a member (and one by the owner) changes nothing, not even `uses`.
    for user in [joiner, Id::new(10)] {
        assert_eq!(
            ctx.store.accept_invite("join", user, now).await.unwrap(),
            InviteAcceptance::AlreadyMember(Id::new(100))
        );
    }
    assert_eq!(uses_of(&ctx, "join").await, Some(1));
    assert_eq!(ctx.store.member_count(Id::new(100)).await.unwrap(), 2);
}

async fn accept_invite_refuses_expired_and_exhausted(ctx: Ctx) {
    setup(&ctx).await;
    let a = ctx.user(11, "a").await;
    let b = ctx.user(12, "b").await;
    ctx.store
        .insert_invite(&new_invite("once", 1, 0))
        .await
        .unwrap();
    // CREATED + 60 s lifetime.
    ctx.store
        .insert_invite(&new_invite("minute", 0, 60))
        .await
        .unwrap();
    let now = Timestamp::now();
    assert_eq!(
        ctx.store.accept_invite("once", a, now).await.unwrap(),
        InviteAcceptance::Joined(Id::new(100))
    );
    assert_eq!(
        ctx.store.accept_invite("once", b, now).await.unwrap(),
        InviteAcceptance::Unavailable
    );
    assert_eq!(
        ctx.store.accept_invite("minute", b, now).await.unwrap(),
        InviteAcceptance::Unavailable
    );
    let in_time = Timestamp::from_unix_micros(CREATED.unix_micros() + 59_000_000);
    assert_eq!(
        ctx.store.accept_invite("minute", b, in_time).await.unwrap(),
        InviteAcceptance::Joined(Id::new(100))
    );
    assert_eq!(
        ctx.store.accept_invite("missing", b, now).await.unwrap(),
        InviteAcceptance::Unavailable
    );
    assert_eq!(uses_of(&ctx, "once").await, Some(1));
    assert_eq!(uses_of(&ctx, "minute").await, Some(1));
}

async fn concurrent_accepts_respect_the_cap(ctx: Ctx) {
    setup(&ctx).await;
    ctx.store
        .insert_invite(&new_invite("race", 3, 0))
        .await
        .unwrap();
    let mut users = Vec::new();
    for n in 0..10 {
        users.push(ctx.user(20 + n, &format!("racer{n}")).await);
    }
    // Every user twice: duplicates must not burn uses, and no more than three may join.
    let store: Arc<_> = ctx.store.clone();
    let tasks: Vec<_> = users
        .iter()
        .chain(users.iter())
        .map(|user| {
            let store = store.clone();
            let user = *user;
            tokio::spawn(async move {
                store
                    .accept_invite("race", user, Timestamp::now())
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut joined = 0;
    for task in tasks {
        joined += usize::from(matches!(task.await.unwrap(), InviteAcceptance::Joined(_)));
    }
    assert_eq!(joined, 3);
    assert_eq!(uses_of(&ctx, "race").await, Some(3));
    assert_eq!(ctx.store.member_count(Id::new(100)).await.unwrap(), 4);
}
