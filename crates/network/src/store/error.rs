//! [`StoreError`]: every way the store can fail, with driver errors mapped in one place
//! ([`StoreError::from_sqlx`]).
//!
//! Errors are `Clone` (sources are held in `Arc`s) because one failed group commit answers
//! every waiter of its batch with the same error.

use std::{error::Error as StdError, sync::Arc};

/// A `Result` whose error is a [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Why a store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or connected to (bad URL, unreachable server, refused
    /// credentials, unwritable file).
    #[error(
        "[PN-STORE-001] cannot open the database at {url}: {source}; \
         check the URL, that the server is running and the credentials"
    )]
    Open {
        /// The URL, with any password replaced by `***`.
        url: String,
        /// The driver's error.
        #[source]
        source: Arc<sqlx::Error>,
    },

    /// The schema migrations could not be applied.
    #[error(
        "[PN-STORE-002] cannot migrate the database at {url}: {source}; \
         the database may belong to a newer provernet or have been altered by hand"
    )]
    Migrate {
        /// The URL, with any password replaced by `***`.
        url: String,
        /// The migrator's error.
        #[source]
        source: Arc<sqlx::migrate::MigrateError>,
    },

    /// The connection to the database was lost or broke during an operation.
    #[error("[PN-STORE-003] lost the connection to the database: {source}")]
    Connection {
        /// The driver's error.
        #[source]
        source: Arc<sqlx::Error>,
    },

    /// The database is locked or busy (SQLite `SQLITE_BUSY`/`SQLITE_LOCKED` after the busy
    /// timeout; PostgreSQL serialization failure, deadlock or lock not available).
    #[error(
        "[PN-STORE-004] the database is locked or busy: {source}; is another process writing to it?"
    )]
    Busy {
        /// The driver's error.
        #[source]
        source: Arc<sqlx::Error>,
    },

    /// A write violated a unique constraint.
    #[error(
        "[PN-STORE-005] unique constraint {} violated: {source}",
        constraint.as_deref().unwrap_or("(unnamed)")
    )]
    UniqueViolation {
        /// The constraint's name, when the driver reports it.
        constraint: Option<String>,
        /// The driver's error.
        #[source]
        source: Arc<sqlx::Error>,
    },

    /// No pooled connection became free within the pool's acquire timeout.
    #[error("[PN-STORE-006] timed out waiting for a database connection from the pool")]
    PoolTimeout,

    /// A stored row does not decode into its entity.
    #[error("[PN-STORE-007] corrupt row in table {table} with key {key}: {source}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The row's key as stored.
        key: String,
        /// The JSON error.
        #[source]
        source: Arc<serde_json::Error>,
    },

    /// A stored row decodes, but into an entity whose key is not the row's key.
    #[error(
        "[PN-STORE-008] corrupt row in table {table} with key {key}: its data holds key {found}"
    )]
    KeyMismatch {
        /// The table.
        table: &'static str,
        /// The row's key as stored.
        key: String,
        /// The key of the entity in the row's data.
        found: String,
    },

    /// An entity could not be written (it does not serialize, or a number does not fit the
    /// column).
    #[error("[PN-STORE-009] cannot write {table} row {key}: {reason}")]
    Encode {
        /// The table.
        table: &'static str,
        /// The row's key.
        key: String,
        /// Why.
        reason: String,
    },

    /// The store writer has stopped (after a failed commit, or on shutdown): nothing more is
    /// written until the network restarts and reloads its state from the database.
    #[error(
        "[PN-STORE-010] the store writer has stopped; \
         restart the network to reload its state from the database"
    )]
    WriterStopped,

    /// Another network process leads the database now (hot standby): this one's commits are
    /// fenced off, and it must stop.
    #[error(
        "[PN-STORE-012] deposed: this process led at epoch {ours}, the database's leader epoch \
         is {current:?}; another network process leads now"
    )]
    Deposed {
        /// The epoch this process led at.
        ours: i64,
        /// The database's epoch.
        current: Option<i64>,
    },

    /// Any other database error.
    #[error("[PN-STORE-011] database error: {0}")]
    Other(#[source] Arc<dyn StdError + Send + Sync>),
}

impl StoreError {
    /// Whether trying the same operation again may succeed: the database was busy, the pool
    /// had no free connection, or the connection broke.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Busy { .. } | Self::PoolTimeout | Self::Connection { .. })
    }

    /// Whether the database could not be reached (the connection broke, or none could be
    /// had): a server restarting, rather than a statement it refused.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::PoolTimeout | Self::Connection { .. })
    }

    /// Maps a driver error from an operation on an open database.
    pub fn from_sqlx(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut => Self::PoolTimeout,
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Self::Connection { source: Arc::new(err) },
            sqlx::Error::Database(ref db) => {
                if db.is_unique_violation() {
                    let constraint = db.constraint().map(str::to_owned);
                    Self::UniqueViolation { constraint, source: Arc::new(err) }
                } else if is_busy(db.as_ref()) {
                    Self::Busy { source: Arc::new(err) }
                } else {
                    Self::Other(Arc::new(err))
                }
            }
            other => Self::Other(Arc::new(other)),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        Self::from_sqlx(err)
    }
}

/// Whether a database error means "locked or busy, try again".
///
/// SQLite reports its extended result code as a decimal string whose low byte is the primary
/// code: `5` `SQLITE_BUSY`, `6` `SQLITE_LOCKED`. PostgreSQL reports SQLSTATE: `40001`
/// serialization failure, `40P01` deadlock detected, `55P03` lock not available.
fn is_busy(db: &dyn sqlx::error::DatabaseError) -> bool {
    let code = db.code();
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        is_sqlite_busy_code(code.as_deref())
    } else {
        matches!(code.as_deref(), Some("40001" | "40P01" | "55P03"))
    }
}

fn is_sqlite_busy_code(code: Option<&str>) -> bool {
    code.and_then(|c| c.parse::<u32>().ok()).is_some_and(|c| matches!(c & 0xff, 5 | 6))
}

/// `url` with any password (in the user info or a `password` query pair) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        // Not a URL we can take apart: show only the scheme, which cannot hold a secret.
        return match url.split_once(':') {
            Some((scheme, _)) => format!("{scheme}:…"),
            None => "(unparsable URL)".to_owned(),
        };
    };
    if parsed.password().is_some() {
        // Only fails for URLs that cannot have a password, which this one has.
        let _ = parsed.set_password(Some("***"));
    }
    if parsed.query_pairs().any(|(k, _)| k.eq_ignore_ascii_case("password")) {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if k.eq_ignore_ascii_case("password") { "***".into() } else { v.into() };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_in_user_info_and_query() {
        assert_eq!(redact_url("postgres://u:secret@db:5432/x"), "postgres://u:***@db:5432/x");
        assert_eq!(
            redact_url("postgres://db/x?user=u&password=secret&sslmode=require"),
            "postgres://db/x?user=u&password=***&sslmode=require"
        );
        assert_eq!(redact_url("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(redact_url("sqlite://data/network.db"), "sqlite://data/network.db");
        assert!(!redact_url("not a url with secret").contains("secret"));
    }

    #[test]
    fn sqlite_busy_codes() {
        assert!(is_sqlite_busy_code(Some("5")));
        assert!(is_sqlite_busy_code(Some("517"))); // SQLITE_BUSY_SNAPSHOT
        assert!(is_sqlite_busy_code(Some("6")));
        assert!(is_sqlite_busy_code(Some("262"))); // SQLITE_LOCKED_SHAREDCACHE
        assert!(!is_sqlite_busy_code(Some("2067"))); // SQLITE_CONSTRAINT_UNIQUE
        assert!(!is_sqlite_busy_code(Some("1")));
        assert!(!is_sqlite_busy_code(None));
    }
}
