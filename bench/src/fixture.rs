//! The fixture file `bench setup` writes and every scenario reads: the accounts, bots, guilds
//! and memberships it created, with their tokens and ids.
//!
//! `import` builds the same file from a hand-written list of tokens, for servers on which
//! `setup` cannot create accounts.

mod import;

pub use import::{run as import, Handmade};

use std::path::Path;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

/// Format version written by this bench.
pub const VERSION: u32 = 1;

/// A registered human account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    /// Snowflake.
    pub id: String,
    /// Username it registered with.
    pub username: String,
    /// Token, used bare in `Authorization` and Identify.
    pub token: String,
}

/// An application's bot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bot {
    /// Application (and bot user) snowflake.
    pub id: String,
    /// Index of the owning user in `users`, when the fixture holds it (an imported bot's
    /// owner is not known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<usize>,
    /// Bot token, without the `Bot ` prefix.
    pub token: String,
}

/// A guild with its text channel and its members.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Guild {
    /// Snowflake.
    pub id: String,
    /// The first text channel (type 0); senders post here.
    pub channel_id: String,
    /// Index of the owner in `users`.
    pub owner: usize,
    /// Indexes in `users` of every member, owner first.
    pub members: Vec<usize>,
}

/// Everything `bench setup` created.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fixture {
    /// Format version.
    pub version: u32,
    /// Server it was created on, e.g. `http://127.0.0.1:8080`.
    pub target: String,
    /// When, RFC 3339.
    pub created_at: String,
    /// Human accounts.
    pub users: Vec<User>,
    /// Bots (they cannot accept invites, so they are in no guild).
    pub bots: Vec<Bot>,
    /// Guilds.
    pub guilds: Vec<Guild>,
}

impl Fixture {
    /// Reads and checks a fixture file.
    ///
    /// # Errors
    /// When the file is missing, malformed, or refers to users it does not hold.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read(path).with_context(|| {
            format!(
                "reading the fixture {} (run `bench setup` first)",
                path.display()
            )
        })?;
        let fixture: Self = serde_json::from_slice(&text)
            .with_context(|| format!("{} is not a bench fixture", path.display()))?;
        fixture.check()?;
        Ok(fixture)
    }

    /// Writes the fixture as pretty JSON.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_vec_pretty(self).context("encoding the fixture")?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.version != VERSION {
            bail!(
                "fixture version {} is not {VERSION}; run `bench setup` again",
                self.version
            );
        }
        if self.users.is_empty() {
            bail!("the fixture has no users");
        }
        let known = |i: &usize| *i < self.users.len();
        for guild in &self.guilds {
            if !known(&guild.owner) || !guild.members.iter().all(known) {
                bail!("guild {} refers to a user the fixture lacks", guild.id);
            }
        }
        if !self.bots.iter().all(|b| b.owner.as_ref().is_none_or(known)) {
            bail!("a bot refers to an owner the fixture lacks");
        }
        Ok(())
    }

    /// The guild with the most members (large-guild mode).
    pub fn largest_guild(&self) -> Option<usize> {
        (0..self.guilds.len()).max_by_key(|g| self.guilds[*g].members.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Fixture {
        Fixture {
            version: VERSION,
            target: "http://127.0.0.1:1".to_owned(),
            created_at: String::new(),
            users: (0..3)
                .map(|i| User {
                    id: i.to_string(),
                    username: format!("u{i}"),
                    token: format!("t{i}"),
                })
                .collect(),
            bots: vec![],
            guilds: vec![
                Guild {
                    id: "10".to_owned(),
                    channel_id: "11".to_owned(),
                    owner: 0,
                    members: vec![0, 1],
                },
                Guild {
                    id: "20".to_owned(),
                    channel_id: "21".to_owned(),
                    owner: 1,
                    members: vec![1, 2, 0],
                },
            ],
        }
    }

    #[test]
    fn round_trips_and_checks_references() {
        let path = std::env::temp_dir().join(format!("bench-fixture-{}.json", std::process::id()));
        let fixture = sample();
        fixture.save(&path).unwrap();
        let loaded = Fixture::load(&path).unwrap();
        assert_eq!(loaded.users.len(), 3);
        assert_eq!(loaded.largest_guild(), Some(1));
        let mut broken = sample();
        broken.guilds[0].members.push(7);
        broken.save(&path).unwrap();
        assert!(Fixture::load(&path).is_err());
        std::fs::remove_file(&path).unwrap();
    }
}
