//! The same gateway on PostgreSQL.

use concord_core::gateway::Intents;

use crate::common::{config, message, Gateway};

#[tokio::test]
async fn identify_and_dispatch_on_postgres() {
    let url = concord_store_sql::test_util::scratch_postgres_url().await;
    let gw = Gateway::start_on(&url, config()).await;
    let (owner, _) = gw.user("pgowner").await;
    let (member, token) = gw.user("pgmember").await;
    let (guild, channel) = gw.guild(owner, Vec::new()).await;
    gw.join(guild, member).await;
    let (mut client, ready) = gw
        .identified(
            &format!("Bot {token}"),
            Intents::GUILDS | Intents::GUILD_MESSAGES,
        )
        .await;
    assert_eq!(ready["d"]["guilds"][0]["id"], guild.to_string());
    let create = client.dispatch().await;
    assert_eq!(create["d"]["member_count"], 2);
    assert_eq!(create["d"]["channels"][0]["id"], channel.to_string());
    gw.publish(message(guild, channel, "from postgres", None))
        .await;
    let event = client.dispatch().await;
    assert_eq!(
        (event["s"].as_u64(), event["d"]["content"].as_str()),
        (Some(3), Some(""))
    );
}
