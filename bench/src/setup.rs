//! `bench setup`: creates accounts, bots, guilds and memberships through the public REST API
//! only (register, applications, guilds, invites) and writes the fixture file.
//!
//! Registration sends `username` and `password` plus `--register-extra`; a server that
//! answers with the token only is asked `GET /users/@me` for the account's id.
//!
//! Guild `g` has members `(g·K + j) mod U` for `j < K`, the first being its owner, so that
//! memberships spread evenly over the users.

use std::future::Future;
use std::sync::Arc;

use anyhow::{bail, Context};
use rand::distributions::Alphanumeric;
use rand::Rng;
use reqwest::Method;
use serde_json::{json, Map, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::cli::SetupArgs;
use crate::fixture::{self, Bot, Fixture, Guild, User};
use crate::progress::Progress;
use crate::report::Report;
use crate::rest::{ApiError, Call, Rest};
use crate::target::Target;

/// Guilds a user may be in (Discord's cap for user accounts, which Concord keeps).
const MAX_GUILDS_PER_USER: usize = 100;

/// Members of guild `g`: K users starting at g·K, wrapping around.
pub fn members_of(guild: usize, per_guild: usize, users: usize) -> Vec<usize> {
    (0..per_guild)
        .map(|j| (guild * per_guild + j) % users)
        .collect()
}

/// Runs setup and writes the fixture to `path`.
///
/// # Errors
/// When the plan breaks a limit, or the server refuses a step (naming a missing route).
pub async fn run(
    target: &Target,
    args: &SetupArgs,
    path: &std::path::Path,
    progress: &Progress,
    user_agent: Option<&str>,
) -> anyhow::Result<Report> {
    let users = args.users;
    if users == 0 {
        bail!("--users must be at least 1");
    }
    let per_guild = args.members_per_guild.unwrap_or(users);
    if per_guild == 0 || per_guild > users {
        bail!("--members-per-guild must be between 1 and --users ({users})");
    }
    let mut memberships = vec![0usize; users];
    for g in 0..args.guilds {
        for m in members_of(g, per_guild, users) {
            memberships[m] += 1;
        }
    }
    let busiest = memberships.iter().copied().max().unwrap_or(0);
    if busiest > MAX_GUILDS_PER_USER {
        bail!(
            "some users would be in {busiest} guilds; a user may be in at most {MAX_GUILDS_PER_USER} \
             (raise --users or lower --guilds / --members-per-guild)"
        );
    }
    let mut report = Report::new("setup", &target.base, serde_json::to_value(args)?);
    let started = Instant::now();
    let rest = Arc::new(Rest::new(target, args.concurrency.max(1) * 2, user_agent)?);
    let prefix = args.prefix.clone().unwrap_or_else(|| {
        rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(6)
            .map(char::from)
            .collect::<String>()
            .to_lowercase()
    });
    let password = format!("bench-password-{prefix}");
    let limit = Arc::new(Semaphore::new(args.concurrency.max(1)));

    progress.phase("registering");
    let registered = in_parallel(&limit, progress, "accounts", users, |i| {
        let rest = rest.clone();
        let username = format!("{prefix}-u{i}");
        let body = registration(&username, &password, args.register_extra.as_ref());
        async move {
            let call = Call::new(
                Method::POST,
                "/auth/register",
                "/auth/register".to_owned(),
                None,
            );
            let answer = rest.expect_success(&call, Some(body)).await?;
            let token = text(&answer, "token")?;
            // Concord answers with the id too; Discord-style servers give the token only.
            let id = match answer.get("user_id").and_then(Value::as_str) {
                Some(id) => id.to_owned(),
                None => current_user(&rest, &token).await?.0,
            };
            Ok(User {
                id,
                username,
                token,
            })
        }
    })
    .await
    .context("registering accounts")?;
    let users_list = Arc::new(registered);

    progress.phase("creating bots");
    let bots = in_parallel(&limit, progress, "bots", args.bots, |i| {
        let (rest, users_list) = (rest.clone(), users_list.clone());
        let name = format!("{prefix}-b{i}");
        async move {
            let owner = i % users_list.len();
            let auth = users_list[owner].token.as_str();
            let call = Call::new(
                Method::POST,
                "/applications",
                "/applications".to_owned(),
                Some(auth),
            );
            let app = rest
                .expect_success(&call, Some(json!({"name": name})))
                .await?;
            let id = text(&app, "id")?;
            // Discord shows a bot token only on reset; Concord also returns it at creation.
            let token = match app.get("token").and_then(Value::as_str) {
                Some(token) => token.to_owned(),
                None => bot_token(&rest, &id, auth).await?,
            };
            Ok(Bot {
                id,
                owner: Some(owner),
                token,
            })
        }
    })
    .await
    .context("creating applications")?;

    progress.phase("creating guilds");
    let guilds = in_parallel(&limit, progress, "guilds", args.guilds, |g| {
        let (rest, users_list) = (rest.clone(), users_list.clone());
        let name = format!("{prefix} guild {g}");
        async move {
            let members = members_of(g, per_guild, users_list.len());
            let owner = members[0];
            let auth = Some(users_list[owner].token.as_str());
            let call = Call::new(Method::POST, "/guilds", "/guilds".to_owned(), auth);
            let guild = rest
                .expect_success(&call, Some(json!({"name": name})))
                .await?;
            let id = text(&guild, "id")?;
            let channel_id = first_text_channel(&rest, &id, &users_list[owner].token).await?;
            Ok(Guild {
                id,
                channel_id,
                owner,
                members,
            })
        }
    })
    .await
    .context("creating guilds")?;

    progress.phase("inviting");
    let invites = in_parallel(&limit, progress, "invites", guilds.len(), |g| {
        let (rest, users_list) = (rest.clone(), users_list.clone());
        let guild = guilds[g].clone();
        async move {
            let call = Call::new(
                Method::POST,
                "/channels/{channel_id}/invites",
                format!("/channels/{}/invites", guild.channel_id),
                Some(users_list[guild.owner].token.as_str()),
            );
            let invite = rest
                .expect_success(&call, Some(json!({"max_age": 0, "max_uses": 0})))
                .await?;
            text(&invite, "code")
        }
    })
    .await
    .context("creating invites")?;

    progress.phase("joining");
    let joins: Vec<(usize, usize)> = guilds
        .iter()
        .enumerate()
        .flat_map(|(g, guild)| guild.members.iter().skip(1).map(move |m| (g, *m)))
        .collect();
    let joins = Arc::new(joins);
    let invites = Arc::new(invites);
    in_parallel(&limit, progress, "memberships", joins.len(), |j| {
        let (rest, users_list, joins, invites) = (
            rest.clone(),
            users_list.clone(),
            joins.clone(),
            invites.clone(),
        );
        async move {
            let (g, member) = joins[j];
            let call = Call::new(
                Method::POST,
                "/invites/{code}",
                format!("/invites/{}", invites[g]),
                Some(users_list[member].token.as_str()),
            );
            rest.expect_success(&call, None).await.map(|_| ())
        }
    })
    .await
    .context("joining guilds")?;

    let fixture = Fixture {
        version: fixture::VERSION,
        target: target.base.clone(),
        created_at: report.started_at.clone(),
        users: Arc::try_unwrap(users_list).unwrap_or_else(|shared| (*shared).clone()),
        bots,
        guilds,
    };
    fixture.save(path)?;
    report.count("users", fixture.users.len() as u64);
    report.count("bots", fixture.bots.len() as u64);
    report.count("guilds", fixture.guilds.len() as u64);
    report.count("memberships", (joins.len() + fixture.guilds.len()) as u64);
    report.real("seconds", started.elapsed().as_secs_f64());
    report
        .notes
        .push(format!("fixture written to {}", path.display()));
    Ok(report)
}

/// The registration body: `username`, `password`, then `extra` merged over them, with
/// `{username}` in its strings replaced (an e-mail address must differ per account).
pub fn registration(username: &str, password: &str, extra: Option<&Map<String, Value>>) -> Value {
    let mut body = Map::new();
    body.insert("username".to_owned(), json!(username));
    body.insert("password".to_owned(), json!(password));
    for (key, value) in extra.into_iter().flatten() {
        body.insert(key.clone(), fill_username(value, username));
    }
    Value::Object(body)
}

fn fill_username(value: &Value, username: &str) -> Value {
    match value {
        Value::String(text) => Value::String(text.replace("{username}", username)),
        Value::Array(items) => items.iter().map(|v| fill_username(v, username)).collect(),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), fill_username(v, username)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `GET /users/@me` with `auth` (a bare user token, or `Bot …`): the account's id and username.
///
/// # Errors
/// When the server refuses the token or answers without an id.
pub async fn current_user(rest: &Rest, auth: &str) -> anyhow::Result<(String, String)> {
    let call = Call::new(
        Method::GET,
        "/users/@me",
        "/users/@me".to_owned(),
        Some(auth),
    );
    let me = rest.expect_success(&call, None).await?;
    let username = me
        .get("username")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Ok((text(&me, "id")?, username))
}

/// Runs `count` jobs with at most the semaphore's permits in flight; results in job order.
/// The first failure stops the rest.
pub(crate) async fn in_parallel<T, F, Fut>(
    limit: &Arc<Semaphore>,
    progress: &Progress,
    what: &str,
    count: usize,
    job: F,
) -> anyhow::Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<T>> + Send + 'static,
{
    let mut set = JoinSet::new();
    for i in 0..count {
        let limit = limit.clone();
        let work = job(i);
        set.spawn(async move {
            let _permit = limit.acquire_owned().await?;
            work.await.map(|value| (i, value))
        });
    }
    let mut results: Vec<Option<T>> = (0..count).map(|_| None).collect();
    let mut done = 0;
    while let Some(joined) = set.join_next().await {
        let (i, value) = joined.context("setup task")??;
        results[i] = Some(value);
        done += 1;
        progress.status(format!("{done}/{count} {what}"));
    }
    Ok(results.into_iter().flatten().collect())
}

/// Discord error code of an application that has no bot user.
const APPLICATION_BOT_ABSENT: i64 = 50010;

/// The token of application `id`'s bot, from `POST /applications/{id}/bot/reset`. An
/// application made without a bot (as Discord made them before 2023, and as servers that
/// follow that rule still do) answers 50010; its bot is then added with
/// `POST /applications/{id}/bot`, whose answer carries the token.
async fn bot_token(rest: &Rest, id: &str, auth: &str) -> anyhow::Result<String> {
    let reset = Call::new(
        Method::POST,
        "/applications/{application_id}/bot/reset",
        format!("/applications/{id}/bot/reset"),
        Some(auth),
    );
    match rest.expect_success(&reset, None).await {
        Ok(answer) => text(&answer, "token"),
        Err(err)
            if err
                .downcast_ref::<ApiError>()
                .is_some_and(|e| e.code == Some(APPLICATION_BOT_ABSENT)) =>
        {
            let add = Call::new(
                Method::POST,
                "/applications/{application_id}/bot",
                format!("/applications/{id}/bot"),
                Some(auth),
            );
            let answer = rest.expect_success(&add, Some(json!({}))).await?;
            match answer.get("token").and_then(Value::as_str) {
                Some(token) => Ok(token.to_owned()),
                // The bot exists now; reset shows its token.
                None => text(&rest.expect_success(&reset, None).await?, "token"),
            }
        }
        Err(err) => Err(err),
    }
}

/// The first text channel (type 0) of `guild`, read with `GET /guilds/{id}/channels` as
/// `token`.
///
/// # Errors
/// A failed request, or a guild without a text channel.
pub(crate) async fn first_text_channel(
    rest: &Rest,
    guild: &str,
    token: &str,
) -> anyhow::Result<String> {
    let call = Call::new(
        Method::GET,
        "/guilds/{guild_id}/channels",
        format!("/guilds/{guild}/channels"),
        Some(token),
    );
    let channels = rest.expect_success(&call, None).await?;
    channels
        .as_array()
        .and_then(|list| {
            list.iter()
                .find(|c| c.get("type").and_then(Value::as_u64) == Some(0))
        })
        .and_then(|c| c.get("id"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("guild {guild} has no text channel"))
}

pub(crate) fn text(body: &Value, field: &str) -> anyhow::Result<String> {
    body.get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("the answer has no `{field}`: {body}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memberships_spread_over_users() {
        assert_eq!(members_of(0, 3, 10), [0, 1, 2]);
        assert_eq!(members_of(3, 3, 10), [9, 0, 1]);
        let mut count = [0; 10];
        for g in 0..10 {
            for m in members_of(g, 5, 10) {
                count[m] += 1;
            }
        }
        assert!(count.iter().all(|c| *c == 5));
    }

    #[test]
    fn extra_registration_fields_are_merged() {
        let extra = crate::cli::parse_json_object(
            r#"{"consent": true, "email": "{username}@example.test", "password": "p2"}"#,
        )
        .unwrap();
        let body = registration("ab-u1", "p1", Some(&extra));
        assert_eq!(
            body,
            json!({"username": "ab-u1", "password": "p2", "consent": true, "email": "ab-u1@example.test"})
        );
        assert_eq!(
            registration("u", "p", None),
            json!({"username": "u", "password": "p"})
        );
    }
}
