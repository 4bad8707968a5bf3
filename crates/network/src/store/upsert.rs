//! Writing one batch's [`Rows`] in one transaction, per engine.
//!
//! - SQLite runs in-process, so a statement costs microseconds: one prepared (and cached)
//!   `INSERT … ON CONFLICT (key) DO UPDATE` per row.
//! - PostgreSQL is a round trip away, so each table is one statement whatever the batch size:
//!   the columns are bound as arrays and `UNNEST`ed into rows. This needs each key at most once
//!   per statement, which [`Rows`] guarantees.
//!
//! Either way the plain columns are rewritten along with `data`, so they always agree with it.

use sqlx::{PgPool, SqlitePool};

use super::{error::Result, rows::Rows};

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
const SQLITE_UPSERT_REQUEST: &str = "INSERT INTO requests \
     (id, status, requester, zkvm_version, created_at, data) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (id) DO UPDATE SET status = excluded.status, requester = excluded.requester, \
     zkvm_version = excluded.zkvm_version, created_at = excluded.created_at, \
     data = excluded.data";
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
    for row in rows.requests {
        sqlx::query(SQLITE_UPSERT_REQUEST)
            .bind(row.id)
            .bind(row.status)
            .bind(row.requester)
            .bind(row.zkvm_version)
            .bind(row.created_at)
            .bind(row.data)
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
const POSTGRES_UPSERT_REQUESTS: &str = "INSERT INTO requests \
     (id, status, requester, zkvm_version, created_at, data) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], \
     $6::text[]) \
     ON CONFLICT (id) DO UPDATE SET status = excluded.status, requester = excluded.requester, \
     zkvm_version = excluded.zkvm_version, created_at = excluded.created_at, \
     data = excluded.data";

/// Writes `rows` to PostgreSQL in one transaction: one statement per table.
pub(super) async fn commit_postgres(pool: &PgPool, rows: Rows) -> Result<()> {
    let mut tx = pool.begin().await?;
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
        let (mut id, mut status, mut requester, mut zkvm_version, mut created_at, mut data) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for row in rows.requests {
            id.push(row.id);
            status.push(row.status);
            requester.push(row.requester);
            zkvm_version.push(row.zkvm_version);
            created_at.push(row.created_at);
            data.push(row.data);
        }
        sqlx::query(POSTGRES_UPSERT_REQUESTS)
            .bind(id)
            .bind(status)
            .bind(requester)
            .bind(zkvm_version)
            .bind(created_at)
            .bind(data)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(data) = rows.ledger {
        sqlx::query(UPSERT_LEDGER).bind(data).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}
