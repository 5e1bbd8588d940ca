//! Wire objects of the REST API and gateway, with every field strict client libraries require.

pub mod application;
pub mod channel;
pub mod guild;
pub mod invite;
pub mod member;
pub mod message;
pub mod role;
pub mod user;

pub use application::Application;
pub use channel::{Channel, ChannelType, OverwriteType, PermissionOverwrite};
pub use guild::{Guild, GuildCreate, PartialGuild};
pub use invite::Invite;
pub use member::Member;
pub use message::{Emoji, Message, MessageReference, Reaction};
pub use role::Role;
pub use user::{CurrentUser, User};
