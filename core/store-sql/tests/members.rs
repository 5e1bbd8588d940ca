//! MemberRepo.

use concord_core::id::Id;
use concord_core::timestamp::Timestamp;

use crate::common::{conformance, raw, Ctx};

conformance!(
    add_and_remove_member,
    members_page_by_user_id,
    member_roles_exclude_everyone
);

async fn add_and_remove_member(ctx: Ctx) {
    let owner = ctx.user(10, "owner").await;
    let alice = ctx.user(11, "alice").await;
    let guild = ctx.guild(100, owner).await;
    let joined = Timestamp::from_unix_micros(1_710_000_000_654_321);

    assert!(ctx.store.member(guild, alice).await.unwrap().is_none());
    assert!(ctx.store.add_member(guild, alice, joined).await.unwrap());
    assert!(!ctx
        .store
        .add_member(guild, alice, Timestamp::now())
        .await
        .unwrap());

    let member = ctx
        .store
        .member(guild, alice)
        .await
        .unwrap()
        .expect("member");
    let user = member.user.as_ref().expect("user filled");
    assert_eq!(user.id, alice);
    assert_eq!(user.username, "alice");
    // The second add did not overwrite the join time.
    assert_eq!(member.joined_at, Some(joined));
    assert!(!member.deaf && !member.mute && !member.pending);
    assert_eq!(member.flags, 0);
    assert_eq!(member.nick, None);
    assert_eq!(member.avatar, None);
    assert_eq!(member.premium_since, None);
    assert_eq!(member.communication_disabled_until, None);
    assert!(member.roles.is_empty());
    assert_eq!(ctx.store.member_count(guild).await.unwrap(), 2);

    assert!(ctx.store.remove_member(guild, alice).await.unwrap());
    assert!(!ctx.store.remove_member(guild, alice).await.unwrap());
    assert!(ctx.store.member(guild, alice).await.unwrap().is_none());
    assert_eq!(ctx.store.member_count(guild).await.unwrap(), 1);
    assert!(ctx.store.user_guild_ids(alice).await.unwrap().is_empty());

    // Unknown guild or user.
    assert!(ctx
        .store
        .member(Id::new(999), owner)
        .await
        .unwrap()
        .is_none());
    assert!(!ctx.store.remove_member(Id::new(999), owner).await.unwrap());
    assert_eq!(ctx.store.member_count(Id::new(999)).await.unwrap(), 0);
}

async fn members_page_by_user_id(ctx: Ctx) {
    let owner = ctx.user(50, "owner").await;
    let guild = ctx.guild(100, owner).await;
    for id in [30, 10, 40, 20] {
        let user = ctx.user(id, &format!("user{id}")).await;
        ctx.store
            .add_member(guild, user, Timestamp::now())
            .await
            .unwrap();
    }
    let page = |after: Option<u64>, limit: u32| {
        let store = ctx.store.clone();
        async move {
            let members = store
                .members(guild, after.map(Id::new), limit)
                .await
                .unwrap();
            for m in &members {
                assert!(m.user.is_some() && m.joined_at.is_some());
            }
            raw(members.iter().filter_map(|m| m.user.as_ref().map(|u| u.id)))
        }
    };
    assert_eq!(page(None, 1000).await, vec![10, 20, 30, 40, 50]);
    assert_eq!(page(None, 2).await, vec![10, 20]);
    assert_eq!(page(Some(20), 2).await, vec![30, 40]);
    assert_eq!(page(Some(25), 10).await, vec![30, 40, 50]);
    assert_eq!(page(Some(50), 10).await, Vec::<u64>::new());
    assert_eq!(page(None, 0).await, Vec::<u64>::new());
    assert!(ctx
        .store
        .members(Id::new(999), None, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn member_roles_exclude_everyone(ctx: Ctx) {
    let owner = ctx.user(10, "owner").await;
    let alice = ctx.user(11, "alice").await;
    let outsider = ctx.user(12, "outsider").await;
    let guild = ctx.guild(100, owner).await;
    ctx.store
        .add_member(guild, alice, Timestamp::now())
        .await
        .unwrap();
    ctx.role(300, guild, "b", 2).await;
    ctx.role(200, guild, "a", 1).await;

    assert_eq!(ctx.store.member_roles(guild, outsider).await.unwrap(), None);
    assert_eq!(
        ctx.store.member_roles(guild, alice).await.unwrap(),
        Some(vec![])
    );

    ctx.grant(guild, alice, 300).await;
    ctx.grant(guild, alice, 200).await;
    let mut roles = raw(ctx
        .store
        .member_roles(guild, alice)
        .await
        .unwrap()
        .expect("member"));
    roles.sort_unstable();
    assert_eq!(roles, vec![200, 300]);
    let mut roles = raw(ctx
        .store
        .member(guild, alice)
        .await
        .unwrap()
        .expect("member")
        .roles);
    roles.sort_unstable();
    assert_eq!(roles, vec![200, 300]);

    let members = ctx.store.members(guild, None, 10).await.unwrap();
    assert_eq!(members.len(), 2);
    assert!(members[0].roles.is_empty(), "owner has no roles");
    assert_eq!(members[1].roles.len(), 2);
    assert!(
        !members
            .iter()
            .flat_map(|m| &m.roles)
            .any(|r| r.get() == 100),
        "@everyone never listed"
    );

    // Leaving drops the member's roles; rejoining starts clean.
    assert!(ctx.store.remove_member(guild, alice).await.unwrap());
    assert_eq!(ctx.count("member_role").await, 0);
    ctx.store
        .add_member(guild, alice, Timestamp::now())
        .await
        .unwrap();
    assert_eq!(
        ctx.store.member_roles(guild, alice).await.unwrap(),
        Some(vec![])
    );
}
