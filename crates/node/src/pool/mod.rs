//! The proving pool: one node identity, a pool of `provernet worker` processes, coordinated
//! through PostgreSQL (DESIGN.md, "Scale-out").
//!
//! The node stays the only process that speaks to the network: it bids, wins, fetches and
//! executes as it does alone, then, where it would prove in-process, it queues a proving task
//! ([`Coordinator::enqueue`]). Workers claim the tasks they can hold, prove, verify their own
//! proof and hand it back; the node verifies it again (a worker is not trusted to be right) and
//! submits it. One FulfillProof per request, whatever dies when: the task is keyed by request,
//! a hand-back is fenced by the claim's attempt number, and the node's job store records the
//! proof before it is submitted.
//!
//! ```text
//! node: Prove ─enqueue─▶ pool_tasks (queued) ◀─claim (SKIP LOCKED, EDF, fits)─ worker
//!       ◀─proved + MAC── hand back (same attempt) ◀─prove, verify────────────┘ │
//!       verify ─▶ proof file ─▶ Submit        heartbeat extends the lease ─────┘
//!       verify fails ─▶ reject: queued again, that worker excluded
//!       lease expired (worker gone) ─▶ claimable again, attempt counted; attempts spent ─▶ failed
//!       request closed ─▶ abandoned (its worker's heartbeat cancels the proof)
//! ```
//!
//! Why the queue is this module's SQL on `sqlx` rather than a queue crate: the crates for
//! PostgreSQL job queues in Rust (sqlxmq 0.6, apalis-postgres 1.0 in release candidates,
//! graphile_worker) dispatch named jobs to handlers with FIFO or priority claims. A proving
//! claim has to filter on what the claiming worker holds (its versions, its free memory, the
//! workers a task excludes after a rejected proof), order by the request's deadline across the
//! pool, and fence a hand-back by the claim it answers; none of them lets a claim say that, and
//! working around them would cost more code than the one claim statement in
//! [`worker`]. The tables are in `schema.sql`; each state change is one statement.
//!
//! Trust: the database's credentials admit a process to the pool. The cluster secret on top
//! ([`ClusterSecret`]) keeps a worker of another cluster (or a misconfigured one) out: a worker
//! whose secret differs from the node's refuses to start, the node counts no capacity of a
//! worker whose registration it cannot authenticate, and it takes no proof without the
//! secret's MAC.
//!
//! Layout:
//! - [`coordinator`]: the node's side: set up the pool, queue tasks, take proofs back, reject,
//!   abandon, and read the live workers as capacity.
//! - [`worker`]: the `provernet worker` process: register, heartbeat, claim, prove, hand back.

pub mod coordinator;
pub mod worker;

use std::path::{Path, PathBuf};

use provernet_types::RequestId;

pub use coordinator::{Coordinator, HandedBack, PoolCapacity, PoolTask, WorkerStatus};
use sqlx::{Connection, PgPool, postgres::PgPoolOptions};
pub use worker::{Worker, WorkerConfig};

/// The pool's tables.
const SCHEMA: &str = include_str!("schema.sql");

/// The advisory lock the schema is created under, so a node and workers starting together do
/// not race on `CREATE TABLE IF NOT EXISTS`.
const SCHEMA_LOCK: i64 = 0x7072_6f76_6e65_7401;

/// The channel a queued task is announced on (workers listen).
const QUEUED_CHANNEL: &str = "provernet_pool_queued";
/// The channel a handed-back or requeued task is announced on (the node listens).
const DONE_CHANNEL: &str = "provernet_pool_done";

/// Longest error text kept in a task row (a backend's message can be long).
const MAX_ERROR_CHARS: usize = 512;

/// Why the pool failed.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The database could not be reached or refused a statement.
    #[error("proving pool database: {0}")]
    Database(#[from] sqlx::Error),
    /// The worker's cluster secret is not the node's.
    #[error(
        "[PN-POOL-SECRET] this worker's cluster secret does not match the node's: give the \
         worker the file named by the node's cluster.secret_file"
    )]
    WrongSecret,
    /// The cluster secret file cannot be used.
    #[error("cluster secret {path}: {reason}")]
    Secret {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The worker was told to prove a version its build has no backend for.
    #[error("[PN-POOL-VERSION] this worker cannot prove {version}: its build proves {known}")]
    UnknownVersion {
        /// The version asked for.
        version: String,
        /// What the build proves.
        known: String,
    },
    /// The worker proves nothing the node bids on.
    #[error(
        "[PN-POOL-VERSION] this worker proves {worker}, the node {node}: none in common, so it \
         would never get a task"
    )]
    NoCommonVersion {
        /// The worker's versions.
        worker: String,
        /// The node's.
        node: String,
    },
    /// A task could not be proven through the pool.
    #[error("proving task: {0}")]
    Task(String),
    /// A row holds something this version cannot read.
    #[error("proving pool row is corrupt: {0}")]
    Corrupt(String),
}

/// The secret a node and its workers share: a worker proves it knows it when it registers and
/// with every proof it hands back.
#[derive(Clone)]
pub struct ClusterSecret {
    key: [u8; 32],
}

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(..)")
    }
}

impl ClusterSecret {
    /// Fewest bytes a secret may have.
    pub const MIN_LEN: usize = 16;

    /// A secret from its text (surrounding whitespace ignored).
    ///
    /// # Errors
    /// [`PoolError::Secret`] if it is shorter than [`Self::MIN_LEN`] bytes.
    pub fn new(text: &str) -> Result<Self, PoolError> {
        let text = text.trim();
        if text.len() < Self::MIN_LEN {
            return Err(PoolError::Secret {
                path: PathBuf::new(),
                reason: format!(
                    "{} bytes; a cluster secret needs at least {} (`provernet worker \
                     secret` makes one)",
                    text.len(),
                    Self::MIN_LEN
                ),
            });
        }
        Ok(Self { key: blake3::derive_key("provernet proving pool secret v1", text.as_bytes()) })
    }

    /// Reads the secret from `path`.
    ///
    /// # Errors
    /// [`PoolError::Secret`] naming the file if it cannot be read or is too short.
    pub fn read(path: &Path) -> Result<Self, PoolError> {
        let named = |reason: String| PoolError::Secret { path: path.to_owned(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| named(e.to_string()))?;
        Self::new(&text).map_err(|e| match e {
            PoolError::Secret { reason, .. } => named(reason),
            other => other,
        })
    }

    /// A new random secret, as text for a file.
    pub fn generate() -> String {
        hex::encode(rand::random::<[u8; 32]>())
    }

    /// What the node publishes of the secret: a worker compares its own with it.
    fn digest(&self) -> [u8; 32] {
        *blake3::hash(&self.key).as_bytes()
    }

    /// A MAC over `parts` (each length-prefixed, so parts cannot run into each other).
    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_keyed(&self.key);
        for part in parts {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        *hasher.finalize().as_bytes()
    }

    /// Whether `mac` is [`Self::mac`] of `parts` (in constant time).
    fn verify(&self, parts: &[&[u8]], mac: &[u8]) -> bool {
        let Ok(mac) = <[u8; 32]>::try_from(mac) else { return false };
        blake3::Hash::from(mac) == blake3::Hash::from(self.mac(parts))
    }

    /// The MAC a worker hands a proof back with: the request, the attempt it answers, the
    /// bundle (public for workers written elsewhere, and for tests that play a rogue one).
    pub fn hand_back_mac(&self, id: &RequestId, attempt: u32, bundle: &[u8]) -> [u8; 32] {
        self.mac(&[id.as_bytes(), &attempt.to_le_bytes(), bundle])
    }

    /// Whether `mac` is [`Self::hand_back_mac`] of the rest.
    fn verify_hand_back(&self, id: &RequestId, attempt: u32, bundle: &[u8], mac: &[u8]) -> bool {
        self.verify(&[id.as_bytes(), &attempt.to_le_bytes(), bundle], mac)
    }

    /// The MAC a worker registers with (public as [`Self::hand_back_mac`] is).
    pub fn registration_mac(&self, worker: &str) -> [u8; 32] {
        self.mac(&[b"register", worker.as_bytes()])
    }
}

/// Connects to the pool's database and creates its tables if need be.
async fn connect(url: &str) -> Result<PgPool, PoolError> {
    let db = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect(url)
        .await?;
    let mut connection = db.acquire().await?;
    let mut tx = connection.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(SCHEMA_LOCK).execute(&mut *tx).await?;
    sqlx::raw_sql(SCHEMA).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(db)
}

/// `text` cut to [`MAX_ERROR_CHARS`], so no row or message grows with a backend's output.
fn bounded(text: &str) -> String {
    match text.char_indices().nth(MAX_ERROR_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mac_holds_only_for_its_secret_and_parts() {
        let secret = ClusterSecret::new("a cluster secret, long enough").unwrap();
        let other = ClusterSecret::new("another cluster secret entirely").unwrap();
        let id = RequestId::from_bytes([7; 32]);
        let mac = secret.hand_back_mac(&id, 1, b"proof");
        assert!(secret.verify_hand_back(&id, 1, b"proof", &mac));
        assert!(!secret.verify_hand_back(&id, 2, b"proof", &mac), "another attempt");
        assert!(!secret.verify_hand_back(&id, 1, b"proog", &mac), "another proof");
        assert!(!other.verify_hand_back(&id, 1, b"proof", &mac));
        assert!(!secret.verify_hand_back(&id, 1, b"proof", &mac[..31]));
        let parts: [&[u8]; 2] = [b"ab", b"c"];
        assert_ne!(secret.mac(&parts), secret.mac(&[b"a", b"bc"]), "parts are length-prefixed");
        assert_ne!(secret.digest(), other.digest());
    }

    #[test]
    fn a_short_secret_is_refused_with_the_minimum() {
        let error = ClusterSecret::new("  short \n").unwrap_err().to_string();
        assert!(error.contains("at least 16"), "{error}");
        assert_eq!(ClusterSecret::generate().len(), 64);
    }

    #[test]
    fn long_errors_are_cut() {
        assert_eq!(bounded("short"), "short");
        let long = "é".repeat(2_000);
        assert_eq!(bounded(&long).chars().count(), MAX_ERROR_CHARS + 1);
    }
}
