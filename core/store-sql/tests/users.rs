//! UserRepo.

use concord_core::id::Id;
use concord_core::repo::{constraint, NewUser, RepoError, UserPatch};

use crate::common::{conformance, new_user, raw, Ctx};

conformance!(
    insert_and_read_current_user,
    duplicate_username_and_email_conflict,
    users_by_id,
    credentials_match_username_or_email_but_not_bots,
    update_user_applies_patch,
    unknown_user,
);

async fn insert_and_read_current_user(ctx: Ctx) {
    let id = ctx.user(10, "alice").await;
    let me = ctx.store.current_user(id).await.unwrap().expect("exists");
    assert_eq!(me.user.id, id);
    assert_eq!(me.user.username, "alice");
    assert_eq!(me.user.discriminator, "0");
    assert!(!me.user.bot);
    assert_eq!(me.user.avatar, None);
    assert_eq!(me.user.banner, None);
    assert_eq!(me.user.global_name, None);
    assert_eq!(me.user.public_flags, 0);
    assert_eq!(me.email.as_deref(), Some("alice@example.com"));
    assert_eq!(me.user.flags, 0);
    assert_eq!(me.user.primary_guild, None);
    assert_eq!(me.locale, "en-US");
    assert!(!me.mfa_enabled);
    assert!(!me.verified);
}

async fn duplicate_username_and_email_conflict(ctx: Ctx) {
    ctx.user(10, "alice").await;

    let same_name = NewUser {
        email: Some("other@example.com".to_owned()),
        ..new_user(11, "alice")
    };
    let err = ctx.store.insert_user(&same_name).await.unwrap_err();
    assert!(
        matches!(err, RepoError::Conflict(c) if c == constraint::USER_USERNAME),
        "{err:?}"
    );

    let same_email = NewUser {
        email: Some("alice@example.com".to_owned()),
        ..new_user(12, "bob")
    };
    let err = ctx.store.insert_user(&same_email).await.unwrap_err();
    assert!(
        matches!(err, RepoError::Conflict(c) if c == constraint::USER_EMAIL),
        "{err:?}"
    );

    // A duplicate id is not one of the named conflicts callers translate.
    let err = ctx
        .store
        .insert_user(&new_user(10, "carol"))
        .await
        .unwrap_err();
    assert!(matches!(err, RepoError::Backend(_)), "{err:?}");

    // Bots have no email; several NULL emails do not collide.
    for (id, name) in [(20, "bot-a"), (21, "bot-b")] {
        let bot = NewUser {
            bot: true,
            email: None,
            password_hash: None,
            ..new_user(id, name)
        };
        ctx.store.insert_user(&bot).await.unwrap();
    }
    assert_eq!(
        ctx.store.users(&[Id::new(11), Id::new(12)]).await.unwrap(),
        vec![]
    );
}

async fn users_by_id(ctx: Ctx) {
    let a = ctx.user(10, "alice").await;
    let b = ctx.user(11, "bob").await;
    ctx.user(12, "carol").await;
    let mut users = ctx.store.users(&[b, a, Id::new(999), a]).await.unwrap();
    users.sort_by_key(|u| u.id);
    assert_eq!(raw(users.iter().map(|u| u.id)), vec![10, 11]);
    assert_eq!(users[1].username, "bob");
    assert!(ctx.store.users(&[]).await.unwrap().is_empty());

    // More ids than one IN list holds.
    let many: Vec<_> = (1..=1200).map(Id::new).collect();
    assert_eq!(ctx.store.users(&many).await.unwrap().len(), 3);
}

async fn credentials_match_username_or_email_but_not_bots(ctx: Ctx) {
    let alice = ctx.user(10, "alice").await;
    let by_name = ctx.store.credentials("alice").await.unwrap();
    assert_eq!(by_name, Some((alice, "hash-of-alice".to_owned())));
    let by_email = ctx.store.credentials("alice@example.com").await.unwrap();
    assert_eq!(by_email, Some((alice, "hash-of-alice".to_owned())));
    assert_eq!(ctx.store.credentials("nobody").await.unwrap(), None);
    assert_eq!(
        ctx.store.credentials("ALICE-not-a-match").await.unwrap(),
        None
    );

    // Even a bot row carrying a hash never logs in with a password.
    let bot = NewUser {
        bot: true,
        email: Some("bot@example.com".to_owned()),
        password_hash: Some("bot-hash".to_owned()),
        ..new_user(11, "botty")
    };
    ctx.store.insert_user(&bot).await.unwrap();
    assert_eq!(ctx.store.credentials("botty").await.unwrap(), None);
    assert_eq!(
        ctx.store.credentials("bot@example.com").await.unwrap(),
        None
    );
}

async fn update_user_applies_patch(ctx: Ctx) {
    let alice = ctx.user(10, "alice").await;
    ctx.user(11, "bob").await;

    let patch = UserPatch {
        avatar: Some(Some("0123456789abcdef0123456789abcdef".to_owned())),
        global_name: Some(Some("Alice A.".to_owned())),
        username: None,
    };
    let me = ctx
        .store
        .update_user(alice, &patch)
        .await
        .unwrap()
        .expect("exists");
    assert_eq!(
        me.user.avatar.as_deref(),
        Some("0123456789abcdef0123456789abcdef")
    );
    assert_eq!(me.user.global_name.as_deref(), Some("Alice A."));
    assert_eq!(me.user.username, "alice");

    // An empty patch changes nothing.
    let same = ctx
        .store
        .update_user(alice, &UserPatch::default())
        .await
        .unwrap()
        .expect("exists");
    assert_eq!(same, me);

    // Inner None clears; other fields stay.
    let patch = UserPatch {
        avatar: Some(None),
        username: Some("alicia".to_owned()),
        ..UserPatch::default()
    };
    let me = ctx
        .store
        .update_user(alice, &patch)
        .await
        .unwrap()
        .expect("exists");
    assert_eq!(me.user.avatar, None);
    assert_eq!(me.user.global_name.as_deref(), Some("Alice A."));
    assert_eq!(me.user.username, "alicia");
    assert_eq!(ctx.store.current_user(alice).await.unwrap(), Some(me));
    assert!(ctx.store.credentials("alicia").await.unwrap().is_some());
    assert!(ctx.store.credentials("alice").await.unwrap().is_none());

    let taken = UserPatch {
        username: Some("bob".to_owned()),
        ..UserPatch::default()
    };
    let err = ctx.store.update_user(alice, &taken).await.unwrap_err();
    assert!(
        matches!(err, RepoError::Conflict(c) if c == constraint::USER_USERNAME),
        "{err:?}"
    );
}

async fn unknown_user(ctx: Ctx) {
    let nobody = Id::new(404);
    assert!(ctx.store.current_user(nobody).await.unwrap().is_none());
    assert!(ctx.store.users(&[nobody]).await.unwrap().is_empty());
    let patch = UserPatch {
        username: Some("x".to_owned()),
        ..UserPatch::default()
    };
    assert!(ctx
        .store
        .update_user(nobody, &patch)
        .await
        .unwrap()
        .is_none());
}
