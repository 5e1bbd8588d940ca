//! twilight-http and twilight-gateway, unmodified, against a running Concord: login, READY,
//! GUILD_CREATE, send, edit, react, delete, each event checked.

use std::time::Duration;

use twilight_gateway::{
    ConfigBuilder, Event, EventTypeFlags, Intents, Shard, ShardId, StreamExt as _,
};
use twilight_http::request::channel::reaction::RequestReactionType;
use twilight_model::id::Id;

use crate::common::{Db, TestServer};

async fn next_event(shard: &mut Shard, wanted: fn(&Event) -> bool) -> Event {
    loop {
        let item = tokio::time::timeout(
            Duration::from_secs(10),
            shard.next_event(EventTypeFlags::all()),
        )
        .await
        .expect("event within 10 s")
        .expect("shard open");
        match item {
            Ok(event) if wanted(&event) => return event,
            Ok(_) => continue,
            Err(error) => panic!("twilight could not parse an event: {error:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilight_end_to_end() {
    let s = TestServer::start(Db::Sqlite).await;
    twilight_flow(&s, s.addr().to_string(), s.ws_url()).await;
}

/// The same against a running cluster: REST through api-1, the gateway through router-1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs scripts/cluster.sh up; run by scripts/cluster_test.sh"]
async fn cluster_twilight_end_to_end() {
    let api = crate::common::Api::new("http://127.0.0.1:18081");
    twilight_flow(
        &api,
        "127.0.0.1:18081".to_owned(),
        "ws://127.0.0.1:18181".to_owned(),
    )
    .await;
}

/// Login, READY, GUILD_CREATE, send, edit, react and delete, each seen as a twilight event.
async fn twilight_flow(s: &crate::common::Api, rest_addr: String, ws_url: String) {
    let (owner, _) = s.user("twowner").await;
    let (bot, bot_id) = s.bot(&owner, "twbot").await;
    let (guild, general) = s.guild(&owner).await;
    s.join(&owner, &general, &bot).await;
    let token = bot.trim_start_matches("Bot ").to_owned();

    let http = twilight_http::Client::builder()
        .proxy(rest_addr, true)
        .token(token.clone())
        .remember_invalid_token(false)
        .build();
    let me = http.current_user().await.unwrap().model().await.unwrap();
    assert_eq!(me.id.get().to_string(), bot_id);

    let intents = Intents::GUILDS
        | Intents::GUILD_MESSAGES
        | Intents::MESSAGE_CONTENT
        | Intents::GUILD_MESSAGE_REACTIONS;
    let config = ConfigBuilder::new(token, intents).proxy_url(ws_url).build();
    let mut shard = Shard::with_config(ShardId::ONE, config);

    let Event::Ready(ready) = next_event(&mut shard, |e| matches!(e, Event::Ready(_))).await else {
        unreachable!()
    };
    assert_eq!(ready.user.id, me.id);
    assert_eq!(ready.guilds.len(), 1);
    let Event::GuildCreate(created) =
        next_event(&mut shard, |e| matches!(e, Event::GuildCreate(_))).await
    else {
        unreachable!()
    };
    assert_eq!(created.id().get().to_string(), guild);

    let channel = Id::new(general.parse().unwrap());
    let sent = http
        .create_message(channel)
        .content("hello from twilight")
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    let Event::MessageCreate(msg) =
        next_event(&mut shard, |e| matches!(e, Event::MessageCreate(_))).await
    else {
        unreachable!()
    };
    assert_eq!(msg.id, sent.id);
    assert_eq!(msg.content, "hello from twilight");
    assert_eq!(msg.author.id, me.id);

    http.update_message(channel, sent.id)
        .content(Some("edited by twilight"))
        .await
        .unwrap();
    let Event::MessageUpdate(upd) =
        next_event(&mut shard, |e| matches!(e, Event::MessageUpdate(_))).await
    else {
        unreachable!()
    };
    assert_eq!(upd.id, sent.id);
    assert_eq!(upd.content, "edited by twilight");
    assert!(upd.edited_timestamp.is_some());

    let fire = RequestReactionType::Unicode { name: "🔥" };
    http.create_reaction(channel, sent.id, &fire).await.unwrap();
    let Event::ReactionAdd(reaction) =
        next_event(&mut shard, |e| matches!(e, Event::ReactionAdd(_))).await
    else {
        unreachable!()
    };
    assert_eq!(reaction.message_id, sent.id);
    assert_eq!(reaction.user_id, me.id);

    http.delete_message(channel, sent.id).await.unwrap();
    let Event::MessageDelete(deleted) =
        next_event(&mut shard, |e| matches!(e, Event::MessageDelete(_))).await
    else {
        unreachable!()
    };
    assert_eq!(deleted.id, sent.id);
    assert_eq!(deleted.channel_id, channel);
}
