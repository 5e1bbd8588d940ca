//! [`LinkTickets`]: signed, short-lived tickets that let a router open a link.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use concord_core::topology::NodeId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// How long a ticket is valid: long enough for a connect, short enough to be useless if seen.
const TICKET_LIFETIME: Duration = Duration::from_secs(60);
/// Audience claim of link tickets.
const AUDIENCE: &str = "concord-link";

#[derive(Serialize, Deserialize)]
struct Claims {
    aud: String,
    exp: u64,
    /// Node the link is for: a ticket for one shard process is refused by the others.
    node: NodeId,
}

/// Mints and checks link tickets with a key derived from the cluster secret.
#[derive(Clone)]
pub struct LinkTickets {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for LinkTickets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkTickets(..)")
    }
}

impl LinkTickets {
    /// Keys from `secret` (the cluster's token secret; a distinct derivation keeps link tickets
    /// and client tokens from ever being interchangeable).
    pub fn new(secret: &[u8]) -> Self {
        let mut key = b"concord-link-ticket:".to_vec();
        key.extend_from_slice(secret);
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            validation,
        }
    }

    /// A ticket for a link to `node`.
    pub fn issue(&self, node: NodeId) -> String {
        let exp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_add(TICKET_LIFETIME)
            .as_secs();
        let claims = Claims {
            aud: AUDIENCE.to_owned(),
            exp,
            node,
        };
        // HS256 over a serialisable struct cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .unwrap_or_default()
    }

    /// Whether `ticket` is valid, unexpired and for `node`.
    pub fn verify(&self, ticket: &str, node: NodeId) -> bool {
        jsonwebtoken::decode::<Claims>(ticket, &self.decoding, &self.validation)
            .is_ok_and(|data| data.claims.node == node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_bind_secret_and_node() {
        let tickets = LinkTickets::new(&[1u8; 32]);
        let ticket = tickets.issue(3);
        assert!(tickets.verify(&ticket, 3));
        assert!(!tickets.verify(&ticket, 4), "another node refuses it");
        assert!(
            !LinkTickets::new(&[2u8; 32]).verify(&ticket, 3),
            "another secret"
        );
        assert!(!tickets.verify("not.a.jwt", 3));
    }
}
