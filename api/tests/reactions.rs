use concord_core::permissions::Permissions;
use serde_json::json;

use crate::backend_tests;
use crate::common::{data, TestApp, TestGuild, TestUser};

backend_tests!(
    add_reaction_dispatches_once,
    custom_and_invalid_emoji,
    reaction_permissions,
    reaction_cap,
    custom_emoji_is_its_id,
    remove_reactions,
    list_reactors,
);

/// Percent-encoded 🔥.
const FIRE: &str = "%F0%9F%94%A5";

async fn setup(app: &TestApp) -> (TestUser, TestUser, TestGuild, String) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let guild = app.guild(&owner, "Reactions").await;
    app.join(&owner, &guild, &member).await;
    let message = app.message(&owner, guild.general, "react to me").await;
    let base = format!(
        "/channels/{}/messages/{}/reactions",
        guild.general,
        message["id"].as_str().unwrap()
    );
    (owner, member, guild, base)
}

async fn add_reaction_dispatches_once(app: TestApp) {
    let (owner, member, guild, base) = setup(&app).await;
    app.clear_events().await;
    app.put(&format!("{base}/{FIRE}/@me"), Some(&member.token))
        .await
        .no_content();
    let dispatch = app.guild_dispatch("MESSAGE_REACTION_ADD").await;
    let d = data(&dispatch);
    assert_eq!(d["user_id"], member.id.to_string());
    assert_eq!(d["channel_id"], guild.general.to_string());
    assert_eq!(d["guild_id"], guild.id.to_string());
    assert_eq!(d["emoji"], json!({ "id": null, "name": "🔥" }));
    assert_eq!(d["member"]["user"]["id"], member.id.to_string());
    assert_eq!(d["burst"], false);
    assert_eq!(d["burst_colors"], json!([]));
    assert_eq!(d["type"], 0);
    assert_eq!(d["message_author_id"], owner.id.to_string());
    assert!(d["message_id"].is_string());
    assert_eq!(
        dispatch.access.as_ref().unwrap().required,
        Permissions::VIEW_CHANNEL
    );

    // Reacting again changes nothing and publishes nothing.
    app.put(&format!("{base}/{FIRE}/@me"), Some(&member.token))
        .await
        .no_content();
    for shard in crate::common::SHARDS {
        assert!(app.dispatches(shard).await.is_empty());
    }
    let message_path = base.trim_end_matches("/reactions").to_owned();
    let message = app.get(&message_path, Some(&member.token)).await.ok(200);
    let reaction = &message["reactions"][0];
    assert_eq!(reaction["count"], 1);
    assert_eq!(reaction["me"], true);
    assert_eq!(reaction["emoji"]["name"], "🔥");
}

async fn custom_and_invalid_emoji(app: TestApp) {
    let (_owner, member, guild, base) = setup(&app).await;
    app.clear_events().await;
    app.put(&format!("{base}/blob:123456/@me"), Some(&member.token))
        .await
        .no_content();
    let dispatch = app.guild_dispatch("MESSAGE_REACTION_ADD").await;
    let d = data(&dispatch);
    assert_eq!(d["emoji"], json!({ "id": "123456", "name": "blob" }));
    app.put(&format!("{base}/a:party:654321/@me"), Some(&member.token))
        .await
        .no_content();
    let dispatch = app.guild_dispatch("MESSAGE_REACTION_ADD").await;
    let d = data(&dispatch);
    assert_eq!(
        d["emoji"],
        json!({ "id": "654321", "name": "party", "animated": true })
    );
    for bad in ["abc", "blob:notanid", "a%20b", "x:y:z:w"] {
        app.put(&format!("{base}/{bad}/@me"), Some(&member.token))
            .await
            .error(400, 10014);
    }
    let unknown = format!(
        "/channels/{}/messages/777/reactions/{FIRE}/@me",
        guild.general
    );
    app.put(&unknown, Some(&member.token))
        .await
        .error(404, 10008);
}

async fn reaction_permissions(app: TestApp) {
    let (owner, member, guild, base) = setup(&app).await;
    let stranger = app.user("stranger").await;
    app.put(&format!("{base}/{FIRE}/@me"), Some(&stranger.token))
        .await
        .error(403, 50001);
    app.everyone_overwrite(
        &owner,
        &guild,
        guild.general,
        0,
        Permissions::ADD_REACTIONS.bits(),
    )
    .await;
    // A new emoji needs ADD_REACTIONS; joining an existing one does not.
    app.put(&format!("{base}/{FIRE}/@me"), Some(&member.token))
        .await
        .error(403, 50013);
    app.put(&format!("{base}/{FIRE}/@me"), Some(&owner.token))
        .await
        .no_content();
    app.put(&format!("{base}/{FIRE}/@me"), Some(&member.token))
        .await
        .no_content();
    app.everyone_overwrite(
        &owner,
        &guild,
        guild.general,
        0,
        Permissions::READ_MESSAGE_HISTORY.bits(),
    )
    .await;
    app.put(&format!("{base}/{FIRE}/@me"), Some(&member.token))
        .await
        .error(403, 50013);
}

async fn reaction_cap(app: TestApp) {
    let (_owner, member, _guild, base) = setup(&app).await;
    for i in 0..20 {
        app.put(
            &format!("{base}/e{i}:{}/@me", 1000 + i),
            Some(&member.token),
        )
        .await
        .no_content();
    }
    app.put(&format!("{base}/{FIRE}/@me"), Some(&member.token))
        .await
        .error(400, 30010);
    // Existing emoji can still be added to.
    app.put(&format!("{base}/e0:1000/@me"), Some(&member.token))
        .await
        .no_content();
}

/// Renaming a custom emoji in the path must neither dodge ADD_REACTIONS and the emoji cap nor
/// split one emoji into several reactions.
async fn custom_emoji_is_its_id(app: TestApp) {
    let (owner, member, guild, base) = setup(&app).await;
    app.put(&format!("{base}/blob:123456/@me"), Some(&owner.token))
        .await
        .no_content();
    app.everyone_overwrite(
        &owner,
        &guild,
        guild.general,
        0,
        Permissions::ADD_REACTIONS.bits(),
    )
    .await;
    // Joining the existing emoji under another name is joining it, not a new emoji.
    app.put(&format!("{base}/renamed:123456/@me"), Some(&member.token))
        .await
        .no_content();
    let message_path = base.trim_end_matches("/reactions");
    let message = app.get(message_path, Some(&owner.token)).await.ok(200);
    let reactions = message["reactions"].as_array().unwrap();
    assert_eq!(reactions.len(), 1, "{reactions:?}");
    assert_eq!(reactions[0]["count"], 2);
    assert_eq!(reactions[0]["emoji"]["name"], "blob");
    let users = app
        .get(&format!("{base}/other:123456"), Some(&owner.token))
        .await
        .ok(200);
    assert_eq!(users.as_array().unwrap().len(), 2);
    app.delete(&format!("{base}/renamed:123456/@me"), Some(&member.token))
        .await
        .no_content();
    let message = app.get(message_path, Some(&owner.token)).await.ok(200);
    assert_eq!(message["reactions"][0]["count"], 1);
}

async fn remove_reactions(app: TestApp) {
    let (owner, member, guild, base) = setup(&app).await;
    let other = app.user("other").await;
    app.join(&owner, &guild, &other).await;
    app.put(&format!("{base}/{FIRE}/@me"), Some(&member.token))
        .await
        .no_content();
    app.put(&format!("{base}/{FIRE}/@me"), Some(&owner.token))
        .await
        .no_content();
    app.clear_events().await;
    app.delete(&format!("{base}/{FIRE}/@me"), Some(&member.token))
        .await
        .no_content();
    let dispatch = app.guild_dispatch("MESSAGE_REACTION_REMOVE").await;
    let d = data(&dispatch);
    assert_eq!(d["user_id"], member.id.to_string());
    assert_eq!(d["emoji"], json!({ "id": null, "name": "🔥" }));
    assert_eq!(d["burst"], false);
    assert_eq!(d["type"], 0);
    // Removing a reaction that is not there is quiet.
    app.delete(&format!("{base}/{FIRE}/@me"), Some(&member.token))
        .await
        .no_content();
    for shard in crate::common::SHARDS {
        assert!(app.dispatches(shard).await.is_empty());
    }
    app.delete(&format!("{base}/{FIRE}/{}", owner.id), Some(&other.token))
        .await
        .error(403, 50013);
    app.put(&format!("{base}/{FIRE}/@me"), Some(&other.token))
        .await
        .no_content();
    app.clear_events().await;
    app.delete(&format!("{base}/{FIRE}/{}", other.id), Some(&owner.token))
        .await
        .no_content();
    let dispatch = app.guild_dispatch("MESSAGE_REACTION_REMOVE").await;
    let d = data(&dispatch);
    assert_eq!(d["user_id"], other.id.to_string());
    app.delete(&format!("{base}/bad/@me"), Some(&member.token))
        .await
        .error(400, 10014);
}

async fn list_reactors(app: TestApp) {
    let (owner, member, _guild, base) = setup(&app).await;
    app.put(&format!("{base}/{FIRE}/@me"), Some(&member.token))
        .await
        .no_content();
    app.put(&format!("{base}/{FIRE}/@me"), Some(&owner.token))
        .await
        .no_content();
    let users = app
        .get(&format!("{base}/{FIRE}"), Some(&member.token))
        .await
        .ok(200);
    let mut ids: Vec<_> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    let mut expected = vec![owner.id.to_string(), member.id.to_string()];
    expected.sort_by_key(|id| id.parse::<u64>().unwrap());
    assert_eq!(ids, expected);
    let first = app
        .get(&format!("{base}/{FIRE}?limit=1"), Some(&member.token))
        .await
        .ok(200);
    assert_eq!(first.as_array().unwrap().len(), 1);
    let rest = app
        .get(
            &format!("{base}/{FIRE}?after={}", expected[0]),
            Some(&member.token),
        )
        .await
        .ok(200);
    ids = rest
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, vec![expected[1].clone()]);
    app.get(&format!("{base}/{FIRE}?limit=0"), Some(&member.token))
        .await
        .form_error(&["limit"], "NUMBER_TYPE_MIN");
    app.get(&format!("{base}/{FIRE}?limit=101"), Some(&member.token))
        .await
        .form_error(&["limit"], "NUMBER_TYPE_MAX");
    assert_eq!(
        app.get(&format!("{base}/other:42"), Some(&member.token))
            .await
            .ok(200),
        json!([])
    );
}
