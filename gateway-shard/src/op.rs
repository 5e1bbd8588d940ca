//! Client commands that need a shard: Identify (op 2), Resume (op 6) and Request Guild
//! Members (op 8). Connection-level ops (heartbeat, the ignored ones) live in `connection`.

mod identify;
mod request_guild_members;
mod resume;

pub(crate) use identify::authorize as authorize_identify;
pub(crate) use identify::authorize_data as authorize_identify_data;
pub(crate) use resume::authorize as authorize_resume;
pub(crate) use resume::authorize_data as authorize_resume_data;
