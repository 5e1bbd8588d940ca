//! TokenRepo.

use concord_core::id::Id;
use concord_core::timestamp::Timestamp;

use crate::common::{conformance, Ctx};

conformance!(token_lifecycle);

async fn token_lifecycle(ctx: Ctx) {
    let alice = ctx.user(10, "alice").await;
    let bob = ctx.user(11, "bob").await;
    let now = Timestamp::now();
    // Token ids are random u64s; the top bit must survive the BIGINT column.
    let (a1, a2, b1) = (u64::MAX - 5, 42, 1 << 63);
    ctx.store.insert_token(a1, alice, now).await.unwrap();
    ctx.store.insert_token(a2, alice, now).await.unwrap();
    ctx.store.insert_token(b1, bob, now).await.unwrap();

    assert!(ctx.store.token_is_live(a1, alice).await.unwrap());
    assert!(ctx.store.token_is_live(a2, alice).await.unwrap());
    assert!(ctx.store.token_is_live(b1, bob).await.unwrap());
    // Right id, wrong user; unknown id.
    assert!(!ctx.store.token_is_live(a1, bob).await.unwrap());
    assert!(!ctx.store.token_is_live(7, alice).await.unwrap());

    ctx.store.revoke_token(a1).await.unwrap();
    assert!(!ctx.store.token_is_live(a1, alice).await.unwrap());
    assert!(ctx.store.token_is_live(a2, alice).await.unwrap());
    // Revoking twice or an unknown token is fine.
    ctx.store.revoke_token(a1).await.unwrap();

    ctx.store.insert_token(7, alice, now).await.unwrap();
    ctx.store.revoke_user_tokens(alice).await.unwrap();
    assert!(!ctx.store.token_is_live(a2, alice).await.unwrap());
    assert!(!ctx.store.token_is_live(7, alice).await.unwrap());
    assert!(ctx.store.token_is_live(b1, bob).await.unwrap());
    ctx.store.revoke_user_tokens(Id::new(999)).await.unwrap();
}
