//! Typed snowflake ids: `Id<UserMarker>` and friends, strings on the wire, strings or integers on input.

use std::fmt;
use std::marker::PhantomData;
use std::num::NonZeroU64;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Marker for user ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserMarker;
/// Marker for guild ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GuildMarker;
/// Marker for channel ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelMarker;
/// Marker for message ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageMarker;
/// Marker for role ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoleMarker;
/// Marker for application ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApplicationMarker;
/// Marker for ids whose kind is decided by context (overwrite targets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GenericMarker;

/// A Discord snowflake tagged with the kind of object it names.
pub struct Id<M> {
    value: NonZeroU64,
    marker: PhantomData<fn(M) -> M>,
}

/// User id.
pub type UserId = Id<UserMarker>;
/// Guild id.
pub type GuildId = Id<GuildMarker>;
/// Channel id.
pub type ChannelId = Id<ChannelMarker>;
/// Message id.
pub type MessageId = Id<MessageMarker>;
/// Role id.
pub type RoleId = Id<RoleMarker>;
/// Application id.
pub type ApplicationId = Id<ApplicationMarker>;
/// Id whose kind depends on context.
pub type GenericId = Id<GenericMarker>;

impl<M> Id<M> {
    /// Wraps a non-zero value.
    pub const fn from_nonzero(value: NonZeroU64) -> Self {
        Self {
            value,
            marker: PhantomData,
        }
    }

    /// Wraps `value`, or `None` when it is zero (Discord ids are never zero).
    pub const fn new_checked(value: u64) -> Option<Self> {
        match NonZeroU64::new(value) {
            Some(v) => Some(Self::from_nonzero(v)),
            None => None,
        }
    }

    /// Wraps `value`.
    ///
    /// # Panics
    /// When `value` is zero.
    #[track_caller]
    pub const fn new(value: u64) -> Self {
        match Self::new_checked(value) {
            Some(id) => id,
            None => panic!("snowflake ids are non-zero"),
        }
    }

    /// Raw value.
    pub const fn get(self) -> u64 {
        self.value.get()
    }

    /// Value as stored in a signed 64-bit database column (snowflakes fit in 63 bits).
    pub const fn to_i64(self) -> i64 {
        self.value.get() as i64
    }

    /// Reads a value stored by [`Id::to_i64`].
    ///
    /// # Panics
    /// When the stored value is zero, which the schema never allows.
    #[track_caller]
    pub const fn from_i64(value: i64) -> Self {
        Self::new(value as u64)
    }

    /// Reinterprets the id under another marker; only where Discord defines it
    /// (the `@everyone` role id is the guild id).
    pub const fn cast<N>(self) -> Id<N> {
        Id::from_nonzero(self.value)
    }

    /// Milliseconds since the Unix epoch at which the id was minted.
    pub const fn timestamp_ms(self) -> u64 {
        (self.value.get() >> 22) + crate::snowflake::DISCORD_EPOCH_MS
    }
}

impl<M> Clone for Id<M> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<M> Copy for Id<M> {}
impl<M> PartialEq for Id<M> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}
impl<M> Eq for Id<M> {}
impl<M> std::hash::Hash for Id<M> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.value.hash(state);
    }
}
impl<M> PartialOrd for Id<M> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<M> Ord for Id<M> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.value.cmp(&other.value)
    }
}
impl<M> fmt::Debug for Id<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.value)
    }
}
impl<M> fmt::Display for Id<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.value, f)
    }
}

/// Error parsing an id from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a snowflake id")]
pub struct ParseIdError;

impl<M> FromStr for Id<M> {
    type Err = ParseIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<u64>()
            .ok()
            .and_then(Self::new_checked)
            .ok_or(ParseIdError)
    }
}

impl<M> Serialize for Id<M> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.value)
    }
}

impl<'de, M> Deserialize<'de> for Id<M> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor<M>(PhantomData<fn(M) -> M>);
        impl<M> Visitor<'_> for IdVisitor<M> {
            type Value = Id<M>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a snowflake as a string or integer")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Id::new_checked(v).ok_or_else(|| E::custom("snowflake ids are non-zero"))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v)
                    .ok()
                    .and_then(Id::new_checked)
                    .ok_or_else(|| E::custom("snowflake ids are positive"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                v.parse().map_err(|_| E::custom("not a snowflake id"))
            }
        }
        deserializer.deserialize_any(IdVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_is_string_input_is_string_or_int() {
        let id: UserId = Id::new(175928847299117063);
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"175928847299117063\""
        );
        let a: UserId = serde_json::from_str("\"175928847299117063\"").unwrap();
        let b: UserId = serde_json::from_str("175928847299117063").unwrap();
        assert_eq!(a, b);
        assert!(serde_json::from_str::<UserId>("\"0\"").is_err());
        assert!(serde_json::from_str::<UserId>("-4").is_err());
        assert!(serde_json::from_str::<UserId>("\"abc\"").is_err());
    }

    #[test]
    fn timestamp_matches_discord_docs() {
        // Example from Discord's snowflake documentation.
        let id: UserId = Id::new(175928847299117063);
        assert_eq!(id.timestamp_ms(), 1462015105796);
    }

    const _: fn() = || {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<UserId>();
    };
}
