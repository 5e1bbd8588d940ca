//! Client commands that need a shard: Identify (op 2), Resume (op 6) and Request Guild
//! Members (op 8). Connection-level ops (heartbeat, the ignored ones) live in `connection`.

mod identify;
mod request_guild_members;
mod resume;

pub(crate) use identify::{check_intents, check_shard};
