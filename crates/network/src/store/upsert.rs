//! Writing one batch's [`Rows`] in one transaction, per engine.
//!
//! - SQLite runs in-process, so a statement costs microseconds: one prepared (and cached)
//!   `INSERT … ON CONFLICT (key) DO UPDATE` per row.
//! - PostgreSQL is a round trip away, so each table is one statement whatever the batch size:
//!   the columns are bound as arrays and `UNNEST`ed into rows. This needs each key at most once
//!   per statement, which [`Rows`] guarantees.
//!
//! Either way the plain columns that can change (a request's status, execution, prover) are
//! rewritten along with `data`, so they always agree with it; those that cannot (its
//! requester, times, program) are written once, so their indexes are not touched again.
//! Bids are inserted once (`ON CONFLICT DO NOTHING`: a batch written again after a failed
//! commit finds them there).

use sqlx::{PgPool, SqlitePool};

use super::{
    error::{Result, StoreError},
    rows::Rows,
};

const SQLITE_UPSERT_ACCOUNT: &str = "INSERT INTO accounts (address, data) VALUES ($1, $2) \
     ON CONFLICT (address) DO UPDATE SET data = excluded.data";
const SQLITE_UPSERT_PROVER: &str = "INSERT INTO provers (owner, operator, data) \
     VALUES ($1, $2, $3) \
     ON CONFLICT (owner) DO UPDATE SET operator = excluded.operator, data = excluded.data";
const SQLITE_UPSERT_PROGRAM: &str = "INSERT INTO programs \
     (program_id, name, zkvm_version, registered_at, data) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (program_id) DO UPDATE SET name = excluded.name, \
     zkvm_version = excluded.zkvm_version, registered_at = excluded.registered_at, \
     data = excluded.data";
/// The upsert of `requests` from `$values` (the 13 columns in order): on conflict, it sets the
/// columns that can change, and with `all` also those written once (the store's upgrade of rows
/// from before the columns existed). One text for both engines and both uses.
macro_rules! upsert_requests {
    ($values:literal) => {
        concat!(
            "INSERT INTO requests (id, status, requester, zkvm_version, created_at, execution, \
             prover, deadline, program_id, proof_mode, closed_at, proof_artifact, data) ",
            $values,
            " ON CONFLICT (id) DO UPDATE SET status = excluded.status, \
             execution = excluded.execution, prover = excluded.prover, \
             closed_at = excluded.closed_at, proof_artifact = excluded.proof_artifact, \
             data = excluded.data"
        )
    };
    ($values:literal, all) => {
        concat!(
            upsert_requests!($values),
            ", requester = excluded.requester, zkvm_version = excluded.zkvm_version, \
             created_at = excluded.created_at, deadline = excluded.deadline, \
             program_id = excluded.program_id, proof_mode = excluded.proof_mode"
        )
    };
}

const SQLITE_UPSERT_REQUEST: &str =
    upsert_requests!("VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)");
const SQLITE_UPSERT_REQUEST_ALL: &str =
    upsert_requests!("VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)", all);
const SQLITE_INSERT_BID: &str = "INSERT INTO bids \
     (request_id, seq, prover, price_per_pgu, at_ms) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (request_id, seq) DO NOTHING";
const UPSERT_LEDGER: &str = "INSERT INTO ledger (id, data) VALUES (1, $1) \
     ON CONFLICT (id) DO UPDATE SET data = excluded.data";

/// Writes `rows` to SQLite in one transaction.
pub(super) async fn commit_sqlite(pool: &SqlitePool, rows: Rows) -> Result<()> {
    let mut tx = pool.begin().await?;
    for row in rows.accounts {
        sqlx::query(SQLITE_UPSERT_ACCOUNT)
            .bind(row.address)
            .bind(row.data)
            .execute(&mut *tx)
            .await?;
    }
    for row in rows.provers {
        sqlx::query(SQLITE_UPSERT_PROVER)
            .bind(row.owner)
            .bind(row.operator)
            .bind(row.data)
            .execute(&mut *tx)
            .await?;
    }
    for row in rows.programs {
        sqlx::query(SQLITE_UPSERT_PROGRAM)
            .bind(row.program_id)
            .bind(row.name)
            .bind(row.zkvm_version)
            .bind(row.registered_at)
            .bind(row.data)
            .execute(&mut *tx)
            .await?;
    }
    let upsert_request =
        if rows.every_column { SQLITE_UPSERT_REQUEST_ALL } else { SQLITE_UPSERT_REQUEST };
    for row in rows.requests {
        sqlx::query(upsert_request)
            .bind(row.id)
            .bind(row.status)
            .bind(row.requester)
            .bind(row.zkvm_version)
            .bind(row.created_at)
            .bind(row.execution)
            .bind(row.prover)
            .bind(row.deadline)
            .bind(row.program_id)
            .bind(row.proof_mode)
            .bind(row.closed_at)
            .bind(row.proof_artifact)
            .bind(row.data)
            .execute(&mut *tx)
            .await?;
    }
    for row in rows.bids {
        sqlx::query(SQLITE_INSERT_BID)
            .bind(row.request_id)
            .bind(row.seq)
            .bind(row.prover)
            .bind(row.price_per_pgu)
            .bind(row.at_ms)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(data) = rows.ledger {
        sqlx::query(UPSERT_LEDGER).bind(data).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

const POSTGRES_UPSERT_ACCOUNTS: &str = "INSERT INTO accounts (address, data) \
     SELECT * FROM UNNEST($1::text[], $2::text[]) \
     ON CONFLICT (address) DO UPDATE SET data = excluded.data";
const POSTGRES_UPSERT_PROVERS: &str = "INSERT INTO provers (owner, operator, data) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[]) \
     ON CONFLICT (owner) DO UPDATE SET operator = excluded.operator, data = excluded.data";
const POSTGRES_UPSERT_PROGRAMS: &str = "INSERT INTO programs \
     (program_id, name, zkvm_version, registered_at, data) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[]) \
     ON CONFLICT (program_id) DO UPDATE SET name = excluded.name, \
     zkvm_version = excluded.zkvm_version, registered_at = excluded.registered_at, \
     data = excluded.data";
/// Every row of the batch, as arrays.
const POSTGRES_UPSERT_REQUESTS: &str = upsert_requests!(
    "SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], \
     $6::text[], $7::text[], $8::bigint[], $9::text[], $10::text[], $11::bigint[], $12::text[], \
     $13::text[])"
);
const POSTGRES_UPSERT_REQUESTS_ALL: &str = upsert_requests!(
    "SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], \
     $6::text[], $7::text[], $8::bigint[], $9::text[], $10::text[], $11::bigint[], $12::text[], \
     $13::text[])",
    all
);
const POSTGRES_INSERT_BIDS: &str = "INSERT INTO bids \
     (request_id, seq, prover, price_per_pgu, at_ms) \
     SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[]) \
     ON CONFLICT (request_id, seq) DO NOTHING";

/// Writes `rows` to PostgreSQL in one transaction: one statement per table, and `journal` (the
/// batch for standbys to follow, [`super::journal`]) appended.
pub(super) async fn commit_postgres(
    pool: &PgPool,
    rows: Rows,
    fence: Option<i64>,
    journal: Option<String>,
) -> Result<()> {
    let mut tx = pool.begin().await?;
    if let Some(ours) = fence {
        // Shared with other commits, exclusive of a standby taking over (its increment waits).
        let current: Option<i64> =
            sqlx::query_scalar("SELECT epoch FROM network_leader WHERE id = 1 FOR SHARE")
                .fetch_optional(&mut *tx)
                .await?;
        if current != Some(ours) {
            return Err(StoreError::Deposed { ours, current });
        }
    }
    if !rows.accounts.is_empty() {
        let (mut address, mut data) = (Vec::new(), Vec::new());
        for row in rows.accounts {
            address.push(row.address);
            data.push(row.data);
        }
        sqlx::query(POSTGRES_UPSERT_ACCOUNTS).bind(address).bind(data).execute(&mut *tx).await?;
    }
    if !rows.provers.is_empty() {
        let (mut owner, mut operator, mut data) = (Vec::new(), Vec::new(), Vec::new());
        for row in rows.provers {
            owner.push(row.owner);
            operator.push(row.operator);
            data.push(row.data);
        }
        sqlx::query(POSTGRES_UPSERT_PROVERS)
            .bind(owner)
            .bind(operator)
            .bind(data)
            .execute(&mut *tx)
            .await?;
    }
    if !rows.programs.is_empty() {
        let (mut program_id, mut name, mut zkvm_version, mut registered_at, mut data) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for row in rows.programs {
            program_id.push(row.program_id);
            name.push(row.name);
            zkvm_version.push(row.zkvm_version);
            registered_at.push(row.registered_at);
            data.push(row.data);
        }
        sqlx::query(POSTGRES_UPSERT_PROGRAMS)
            .bind(program_id)
            .bind(name)
            .bind(zkvm_version)
            .bind(registered_at)
            .bind(data)
            .execute(&mut *tx)
            .await?;
    }
    if !rows.requests.is_empty() {
        let n = rows.requests.len();
        let (mut id, mut status, mut requester, mut zkvm_version, mut created_at) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut execution, mut prover, mut deadline, mut program_id, mut proof_mode) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut closed_at, mut proof_artifact, mut data) =
            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        for row in rows.requests {
            id.push(row.id);
            status.push(row.status);
            requester.push(row.requester);
            zkvm_version.push(row.zkvm_version);
            created_at.push(row.created_at);
            execution.push(row.execution);
            prover.push(row.prover);
            deadline.push(row.deadline);
            program_id.push(row.program_id);
            proof_mode.push(row.proof_mode);
            closed_at.push(row.closed_at);
            proof_artifact.push(row.proof_artifact);
            data.push(row.data);
        }
        let upsert =
            if rows.every_column { POSTGRES_UPSERT_REQUESTS_ALL } else { POSTGRES_UPSERT_REQUESTS };
        sqlx::query(upsert)
            .bind(id)
            .bind(status)
            .bind(requester)
            .bind(zkvm_version)
            .bind(created_at)
            .bind(execution)
            .bind(prover)
            .bind(deadline)
            .bind(program_id)
            .bind(proof_mode)
            .bind(closed_at)
            .bind(proof_artifact)
            .bind(data)
            .execute(&mut *tx)
            .await?;
    }
    if !rows.bids.is_empty() {
        let n = rows.bids.len();
        let (mut request_id, mut seq, mut prover, mut price, mut at_ms) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for row in rows.bids {
            request_id.push(row.request_id);
            seq.push(row.seq);
            prover.push(row.prover);
            price.push(row.price_per_pgu);
            at_ms.push(row.at_ms);
        }
        sqlx::query(POSTGRES_INSERT_BIDS)
            .bind(request_id)
            .bind(seq)
            .bind(prover)
            .bind(price)
            .bind(at_ms)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(data) = rows.ledger {
        sqlx::query(UPSERT_LEDGER).bind(data).execute(&mut *tx).await?;
    }
    if let Some(body) = journal {
        super::journal::append(&mut tx, crate::service::now_ms(), body).await?;
    }
    tx.commit().await?;
    Ok(())
}
