//! Argon2id password hashing, run on the blocking pool so a login never stalls the runtime.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{self, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::config::Argon2Params;
use crate::error::{Error, Result};

/// Hashes and verifies passwords with one hasher built at startup.
#[derive(Clone)]
pub(crate) struct Passwords {
    argon: Arc<Argon2<'static>>,
    /// Hash checked when the login names no account, so unknown and known logins cost the same.
    decoy: Arc<OnceLock<String>>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passwords")
    }
}

impl Passwords {
    /// Builds the hasher.
    ///
    /// # Errors
    /// When the parameters are outside Argon2's bounds.
    pub(crate) fn new(params: Argon2Params) -> Result<Self, argon2::Error> {
        let params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )?;
        Ok(Self {
            argon: Arc::new(Argon2::new(Algorithm::Argon2id, Version::V0x13, params)),
            decoy: Arc::new(OnceLock::new()),
        })
    }

    /// PHC string of a fresh salted hash.
    pub(crate) async fn hash(&self, password: String) -> Result<String> {
        let argon = Arc::clone(&self.argon);
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(Error::PasswordHash)
        })
        .await?
    }

    /// Whether `password` matches `phc`; with no stored hash it spends the same work and says no.
    pub(crate) async fn verify(&self, password: String, phc: Option<String>) -> Result<bool> {
        let argon = Arc::clone(&self.argon);
        let decoy = Arc::clone(&self.decoy);
        tokio::task::spawn_blocking(move || {
            let known = phc.is_some();
            let phc = match phc {
                Some(phc) => phc,
                None => decoy
                    .get_or_init(|| {
                        let salt = SaltString::generate(&mut OsRng);
                        argon
                            .hash_password(b"concord-decoy", &salt)
                            .map(|h| h.to_string())
                            .unwrap_or_default()
                    })
                    .clone(),
            };
            let parsed = match PasswordHash::new(&phc) {
                Ok(parsed) => parsed,
                Err(_) if !known => return Ok(false),
                Err(e) => return Err(Error::PasswordHash(e)),
            };
            match argon.verify_password(password.as_bytes(), &parsed) {
                Ok(()) => Ok(known),
                Err(password_hash::Error::Password) => Ok(false),
                Err(e) => Err(Error::PasswordHash(e)),
            }
        })
        .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let p = Passwords::new(Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap();
        let phc = p.hash("correct horse".to_owned()).await.unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(p
            .verify("correct horse".to_owned(), Some(phc.clone()))
            .await
            .unwrap());
        assert!(!p.verify("wrong".to_owned(), Some(phc)).await.unwrap());
        assert!(!p.verify("concord-decoy".to_owned(), None).await.unwrap());
    }
}
