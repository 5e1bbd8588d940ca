//! Client tokens in Discord's three-part shape: `base64(user id) "." base64(token id) "." hmac`.
//!
//! hikari decodes the first part locally, so it must be the unpadded base64 of the decimal user
//! id. The token id is a snowflake minted per token, which lets the server revoke single tokens
//! (logout) or all tokens of a user (bot token reset) by deleting rows keyed by it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::id::UserId;

type HmacSha256 = Hmac<Sha256>;

/// Key that signs and checks tokens; built once at startup from the configured secret.
#[derive(Clone)]
pub struct TokenKey {
    mac: HmacSha256,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three non-empty dot-separated parts of valid base64.
    #[error("malformed token")]
    Malformed,
    /// The signature does not match.
    #[error("bad token signature")]
    BadSignature,
}

/// What a valid token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenClaims {
    /// User the token acts for.
    pub user_id: UserId,
    /// Id of this token, for revocation.
    pub token_id: u64,
}

impl TokenKey {
    /// Builds a key from a secret of at least 32 bytes.
    ///
    /// # Panics
    /// When the secret is shorter than 32 bytes (configuration validates this first).
    pub fn new(secret: &[u8]) -> Self {
        assert!(secret.len() >= 32, "token secret must be at least 32 bytes");
        Self {
            mac: HmacSha256::new_from_slice(secret).expect("hmac accepts any key length"),
        }
    }

    /// Mints a token for `user_id` with the given token id.
    pub fn mint(&self, user_id: UserId, token_id: u64) -> String {
        let head = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(user_id.to_string()),
            URL_SAFE_NO_PAD.encode(token_id.to_be_bytes())
        );
        let mut mac = self.mac.clone();
        mac.update(head.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{head}.{sig}")
    }

    /// Checks the signature and decodes the claims. Revocation is the caller's second step.
    ///
    /// # Errors
    /// [`TokenError`] when the token is malformed or forged.
    pub fn verify(&self, token: &str) -> Result<TokenClaims, TokenError> {
        let mut parts = token.split('.');
        let (Some(user), Some(id), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| TokenError::Malformed)?;
        let mut mac = self.mac.clone();
        mac.update(&token.as_bytes()[..user.len() + 1 + id.len()]);
        mac.verify_slice(&sig)
            .map_err(|_| TokenError::BadSignature)?;
        let user = URL_SAFE_NO_PAD
            .decode(user)
            .map_err(|_| TokenError::Malformed)?;
        let user_id = std::str::from_utf8(&user)
            .ok()
            .and_then(|s| s.parse::<UserId>().ok())
            .ok_or(TokenError::Malformed)?;
        let id: [u8; 8] = URL_SAFE_NO_PAD
            .decode(id)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(TokenError::Malformed)?;
        Ok(TokenClaims {
            user_id,
            token_id: u64::from_be_bytes(id),
        })
    }
}

/// Strips the `Bot `/`Bearer ` prefixes clients put in front of tokens.
pub fn strip_scheme(raw: &str) -> &str {
    let raw = raw.trim();
    for prefix in ["Bot ", "Bearer ", "bot ", "bearer "] {
        if let Some(rest) = raw.strip_prefix(prefix) {
            return rest.trim_start();
        }
    }
    raw
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Id;
    use base64::engine::general_purpose::STANDARD;

    fn key() -> TokenKey {
        TokenKey::new(&[7u8; 32])
    }

    #[test]
    fn mint_verify_round_trip_and_hikari_shape() {
        let user: UserId = Id::new(175928847299117063);
        let token = key().mint(user, 42);
        assert_eq!(token.split('.').count(), 3);
        // hikari: base64-decode the first part (standard alphabet, padded) and int() it.
        let first = token.split('.').next().unwrap();
        let padded = format!("{first}{}", "=".repeat((4 - first.len() % 4) % 4));
        let decoded = String::from_utf8(STANDARD.decode(padded).unwrap()).unwrap();
        assert_eq!(decoded.parse::<u64>().unwrap(), user.get());
        assert_eq!(
            key().verify(&token),
            Ok(TokenClaims {
                user_id: user,
                token_id: 42
            })
        );
    }

    #[test]
    fn forgery_is_refused() {
        let token = key().mint(Id::new(5), 1);
        let other = TokenKey::new(&[8u8; 32]).mint(Id::new(5), 1);
        assert_eq!(key().verify(&other), Err(TokenError::BadSignature));
        // Swapping the user part keeps the signature but breaks it.
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged_user = URL_SAFE_NO_PAD.encode("6");
        parts[0] = &forged_user;
        assert_eq!(
            key().verify(&parts.join(".")),
            Err(TokenError::BadSignature)
        );
        assert_eq!(key().verify("a.b"), Err(TokenError::Malformed));
        assert_eq!(key().verify("a.b.c.d"), Err(TokenError::Malformed));
        assert_eq!(key().verify(""), Err(TokenError::Malformed));
    }

    #[test]
    fn strips_prefixes() {
        assert_eq!(strip_scheme("Bot abc"), "abc");
        assert_eq!(strip_scheme("Bearer abc"), "abc");
        assert_eq!(strip_scheme("abc"), "abc");
    }
}
