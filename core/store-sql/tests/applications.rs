//! ApplicationRepo.

use concord_core::id::Id;
use concord_core::model::application::FLAGS_ALL_PRIVILEGED;
use concord_core::repo::{constraint, NewApplication, NewUser, RepoError};

use crate::common::{conformance, new_user, Ctx};

conformance!(
    create_and_read_application,
    bot_name_conflict_creates_nothing,
    unknown_application
);

fn new_app(bot_id: u64, bot_name: &str, owner: u64) -> NewApplication {
    NewApplication {
        bot: NewUser {
            bot: true,
            discriminator: "1234".to_owned(),
            email: None,
            password_hash: None,
            ..new_user(bot_id, bot_name)
        },
        flags: FLAGS_ALL_PRIVILEGED,
        name: format!("{bot_name} app"),
        owner_id: Id::new(owner),
        verify_key: "ab".repeat(32),
    }
}

async fn create_and_read_application(ctx: Ctx) {
    let owner = ctx.user(10, "owner").await;
    ctx.store
        .create_application(&new_app(20, "helper", 10))
        .await
        .unwrap();

    let app = ctx
        .store
        .application(Id::new(20))
        .await
        .unwrap()
        .expect("exists");
    assert_eq!(app.id.get(), 20);
    assert_eq!(app.name, "helper app");
    assert_eq!(app.flags, FLAGS_ALL_PRIVILEGED);
    assert_eq!(app.flags_new, FLAGS_ALL_PRIVILEGED.to_string());
    assert_eq!(app.approximate_guild_count, 0);
    assert_eq!(app.verify_key, "ab".repeat(32));
    assert_eq!(app.owner.id, owner);
    assert_eq!(app.owner.username, "owner");
    assert!(!app.owner.bot);
    let bot = app.bot.expect("bot user");
    assert_eq!(bot.id.get(), 20);
    assert!(bot.bot);
    assert_eq!(bot.discriminator, "1234");
    assert!(app.bot_public);
    assert!(!app.bot_require_code_grant);
    assert_eq!(app.description, "");
    assert_eq!(app.summary, "");
    assert_eq!(app.icon, None);
    assert_eq!(app.team, None);

    // The bot is a user like any other, but without a password.
    assert!(
        ctx.store
            .current_user(Id::new(20))
            .await
            .unwrap()
            .expect("bot")
            .user
            .bot
    );
    assert_eq!(ctx.store.credentials("helper").await.unwrap(), None);
}

async fn bot_name_conflict_creates_nothing(ctx: Ctx) {
    ctx.user(10, "owner").await;
    ctx.user(11, "taken").await;
    let err = ctx
        .store
        .create_application(&new_app(20, "taken", 10))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RepoError::Conflict(c) if c == constraint::USER_USERNAME),
        "{err:?}"
    );
    assert!(ctx.store.application(Id::new(20)).await.unwrap().is_none());
    assert!(ctx.store.users(&[Id::new(20)]).await.unwrap().is_empty());

    // An unknown owner fails the application insert; the bot user is rolled back with it.
    let err = ctx
        .store
        .create_application(&new_app(21, "orphan", 999))
        .await
        .unwrap_err();
    assert!(matches!(err, RepoError::Backend(_)), "{err:?}");
    assert!(ctx.store.users(&[Id::new(21)]).await.unwrap().is_empty());
}

async fn unknown_application(ctx: Ctx) {
    assert!(ctx.store.application(Id::new(77)).await.unwrap().is_none());
    // A plain user is not an application.
    ctx.user(10, "owner").await;
    assert!(ctx.store.application(Id::new(10)).await.unwrap().is_none());
}
