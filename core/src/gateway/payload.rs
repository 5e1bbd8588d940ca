//! Gateway payloads: what clients send ([`incoming`]) and what the server sends ([`outgoing`]).

pub mod incoming;
pub mod outgoing;
