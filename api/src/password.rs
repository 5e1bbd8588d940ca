//! Argon2id password hashing, run on a few dedicated threads so a login never stalls the
//! runtime.
//!
//! Each hash needs `memory_kib` of working memory (19 MiB by default). Allocated per hash, as
//! argon2's `PasswordHasher` does, those buffers stayed behind in the allocator's arenas: 2.7 GiB
//! of RSS after 1 000 registrations, measured. So each of a few long-lived threads (one per
//! core, which also caps the cores a burst of logins can take) keeps one buffer and hashes into
//! it: ~20 MiB per core, for the process's life.

use std::cell::RefCell;
use std::sync::{mpsc, Arc, Mutex, OnceLock};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{self, Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::oneshot;

use crate::config::Argon2Params;
use crate::error::{Error, Result};

/// Hashes and verifies passwords with one hasher built at startup.
#[derive(Clone)]
pub(crate) struct Passwords {
    argon: Arc<Argon2<'static>>,
    /// Hash checked when the login names no account, so unknown and known logins cost the same.
    decoy: Arc<OnceLock<String>>,
    /// Queue of the hashing threads; they end when the last clone of this is dropped.
    jobs: mpsc::Sender<Job>,
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
            jobs: start_threads(std::thread::available_parallelism().map_or(1, |n| n.get())),
        })
    }

    /// Runs `job` on a hashing thread.
    async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let (done, result) = oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = done.send(job());
            }))
            .map_err(|_| Error::HashingStopped)?;
        result.await.map_err(|_| Error::HashingStopped)
    }

    /// PHC string of a fresh salted hash.
    pub(crate) async fn hash(&self, password: String) -> Result<String> {
        let argon = Arc::clone(&self.argon);
        self.run(move || hash_in_place(&argon, password.as_bytes()).map_err(Error::PasswordHash))
            .await?
    }

    /// Whether `password` matches `phc`; with no stored hash it spends the same work and says no.
    pub(crate) async fn verify(&self, password: String, phc: Option<String>) -> Result<bool> {
        let argon = Arc::clone(&self.argon);
        let decoy = Arc::clone(&self.decoy);
        self.run(move || {
            let known = phc.is_some();
            let phc = match phc {
                Some(phc) => phc,
                None => decoy
                    .get_or_init(|| hash_in_place(&argon, b"concord-decoy").unwrap_or_default())
                    .clone(),
            };
            let parsed = match PasswordHash::new(&phc) {
                Ok(parsed) => parsed,
                Err(_) if !known => return Ok(false),
                Err(e) => return Err(Error::PasswordHash(e)),
            };
            verify_in_place(password.as_bytes(), &parsed)
                .map(|matches| matches && known)
                .map_err(Error::PasswordHash)
        })
        .await?
    }
}

thread_local! {
    /// The hashing thread's working memory, reused by every hash it runs.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// A fresh PHC string of `password` under `argon`'s settings (Argon2id, version 0x13).
fn hash_in_place(argon: &Argon2<'_>, password: &[u8]) -> password_hash::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let hash = output_in_place(argon, password, salt.as_salt())?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon.params())?,
        salt: Some(salt.as_salt()),
        hash: Some(hash),
    };
    Ok(phc.to_string())
}

/// The raw Argon2 output, computed in the thread's reusable working memory.
fn output_in_place(
    argon: &Argon2<'_>,
    password: &[u8],
    salt: Salt<'_>,
) -> password_hash::Result<Output> {
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
    let params = argon.params();
    let output_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    MEMORY.with_borrow_mut(|memory| {
        memory.resize(params.block_count(), Block::default());
        Output::init_with(output_len, |out| {
            Ok(argon.hash_password_into_with_memory(password, salt_bytes, out, &mut *memory)?)
        })
    })
}

/// Recomputes `stored` (with its own algorithm, version and parameters) and compares the
/// outputs in constant time.
fn verify_in_place(password: &[u8], stored: &PasswordHash<'_>) -> password_hash::Result<bool> {
    let (Some(salt), Some(expected)) = (stored.salt, stored.hash) else {
        return Err(password_hash::Error::PhcStringField);
    };
    let algorithm = Algorithm::try_from(stored.algorithm)?;
    if algorithm != Algorithm::Argon2id {
        return Err(password_hash::Error::Algorithm);
    }
    let version = stored
        .version
        .map(Version::try_from)
        .transpose()?
        .unwrap_or_default();
    let params = Params::try_from(stored)?;
    let argon = Argon2::new(algorithm, version, params);
    // `Output`'s equality is constant-time.
    Ok(output_in_place(&argon, password, salt)? == expected)
}

type Job = Box<dyn FnOnce() + Send>;

/// Starts `count` hashing threads sharing one queue.
fn start_threads(count: usize) -> mpsc::Sender<Job> {
    let (jobs, queue) = mpsc::channel::<Job>();
    let queue = Arc::new(Mutex::new(queue));
    for i in 0..count {
        let queue = Arc::clone(&queue);
        let spawned = std::thread::Builder::new()
            .name(format!("argon2-{i}"))
            .spawn(move || loop {
                // The lock is held only while waiting for the next job, never while hashing.
                let next = match queue.lock() {
                    Ok(queue) => queue.recv(),
                    Err(_) => return,
                };
                match next {
                    Ok(job) => job(),
                    Err(_) => return,
                }
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "password hashing thread not started");
        }
    }
    jobs
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

    #[tokio::test]
    async fn verifies_hashes_made_by_argon2s_own_hasher() {
        use argon2::password_hash::PasswordHasher;
        // Stored hashes from before the reusable working memory, with other parameters too.
        let other = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(128, 2, 1, None).unwrap(),
        );
        let salt = SaltString::generate(&mut OsRng);
        let phc = other
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        let p = Passwords::new(Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap();
        assert!(p
            .verify("correct horse".to_owned(), Some(phc.clone()))
            .await
            .unwrap());
        assert!(!p.verify("wrong".to_owned(), Some(phc)).await.unwrap());
        // And ours verify with argon2's own verifier.
        let ours = p.hash("correct horse".to_owned()).await.unwrap();
        use argon2::password_hash::PasswordVerifier;
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
    }
}
