//! Entities as table rows: keys as `0x`-prefixed hex, the entity as JSON, and the plain
//! columns copied out of it for operators' queries.

use std::collections::BTreeMap;

use provernet_types::{Address, RequestId};
use serde::Serialize;

use super::error::{Result, StoreError};
use crate::market::{Account, Changes, NewBid, Program, Prover, Request, Status};

/// A program id as stored in `programs.program_id`: `0x`-prefixed lowercase hex.
pub fn program_key(program_id: &[u8]) -> String {
    format!("0x{}", hex::encode(program_id))
}

/// A row of `accounts`.
pub(super) struct AccountRow {
    pub(super) address: String,
    pub(super) data: String,
}

/// A row of `provers`.
pub(super) struct ProverRow {
    pub(super) owner: String,
    pub(super) operator: String,
    pub(super) data: String,
}

/// A row of `programs`.
pub(super) struct ProgramRow {
    pub(super) program_id: String,
    pub(super) name: String,
    pub(super) zkvm_version: String,
    pub(super) registered_at: i64,
    pub(super) data: String,
}

/// A status as the `status` column holds it: as the JSON spells it ('Requested', ...), so
/// that `status` and `data` always agree.
pub fn status_key(status: Status) -> String {
    match serde_json::to_value(status) {
        Ok(serde_json::Value::String(status)) => status,
        other => format!("{other:?}"),
    }
}

/// A row of `requests`.
pub(super) struct RequestRow {
    pub(super) id: String,
    pub(super) status: String,
    pub(super) requester: String,
    pub(super) zkvm_version: String,
    pub(super) created_at: i64,
    pub(super) execution: &'static str,
    /// The assigned prover, if any.
    pub(super) prover: Option<String>,
    pub(super) deadline: i64,
    pub(super) program_id: String,
    pub(super) proof_mode: String,
    pub(super) closed_at: Option<i64>,
    /// The proof artifact while it is kept (not deleted by the proof retention).
    pub(super) proof_artifact: Option<String>,
    pub(super) data: String,
}

/// A row of `bids`.
pub(super) struct BidRow {
    pub(super) request_id: String,
    pub(super) seq: i64,
    pub(super) prover: String,
    pub(super) price_per_pgu: String,
    pub(super) at_ms: i64,
}

/// One batch's rows: the last version of each key, each table in key order.
///
/// Encoded before the transaction starts, so a transaction is never held open while encoding
/// (nor begun for a batch that cannot be written). Key order is a fixed lock order, which keeps
/// concurrent writers on PostgreSQL from deadlocking on each other's rows.
#[derive(Default)]
pub(super) struct Rows {
    pub(super) accounts: Vec<AccountRow>,
    pub(super) provers: Vec<ProverRow>,
    pub(super) programs: Vec<ProgramRow>,
    pub(super) requests: Vec<RequestRow>,
    pub(super) bids: Vec<BidRow>,
    /// Whether to write every column of existing requests, not only those that can change
    /// (the store's upgrade of rows from before the columns existed).
    pub(super) every_column: bool,
    /// The `data` of the single `ledger` row.
    pub(super) ledger: Option<String>,
}

impl Rows {
    /// Encodes `batch`; when several `Changes` hold the same key, the latest wins.
    pub(super) fn encode(batch: &[Changes]) -> Result<Rows> {
        let mut accounts: BTreeMap<&Address, &Account> = BTreeMap::new();
        let mut provers: BTreeMap<&Address, &Prover> = BTreeMap::new();
        let mut programs: BTreeMap<&[u8], &Program> = BTreeMap::new();
        let mut requests: BTreeMap<&RequestId, &Request> = BTreeMap::new();
        let mut bids: BTreeMap<(&RequestId, u32), &NewBid> = BTreeMap::new();
        let mut ledger = None;
        for changes in batch {
            accounts.extend(changes.accounts.iter().map(|a| (&a.address, a)));
            provers.extend(changes.provers.iter().map(|p| (&p.owner, p)));
            programs.extend(changes.programs.iter().map(|p| (p.program_id.as_slice(), p)));
            requests.extend(changes.requests.iter().map(|r| (&r.id, r)));
            bids.extend(changes.bids.iter().map(|b| ((&b.request, b.index), b)));
            if let Some(totals) = &changes.ledger {
                ledger = Some(totals);
            }
        }
        let mut rows = Rows::default();
        for (address, account) in accounts {
            let address = address.to_string();
            let data = to_json("accounts", &address, account)?;
            rows.accounts.push(AccountRow { address, data });
        }
        for (owner, prover) in provers {
            let owner = owner.to_string();
            let data = to_json("provers", &owner, prover)?;
            rows.provers.push(ProverRow { owner, operator: prover.operator.to_string(), data });
        }
        for (program_id, program) in programs {
            let program_id = program_key(program_id);
            rows.programs.push(ProgramRow {
                registered_at: to_i64(
                    "programs",
                    &program_id,
                    "registered_at",
                    program.registered_at,
                )?,
                data: to_json("programs", &program_id, program)?,
                name: program.name.clone(),
                zkvm_version: program.zkvm_version.clone(),
                program_id,
            });
        }
        for (id, request) in requests {
            let id = id.to_string();
            rows.requests.push(RequestRow {
                created_at: to_i64("requests", &id, "created_at", request.created_at)?,
                deadline: to_i64("requests", &id, "deadline", request.spec.deadline)?,
                data: to_json("requests", &id, request)?,
                status: status_key(request.status),
                requester: request.requester.to_string(),
                zkvm_version: request.spec.zkvm_version.clone(),
                execution: request.execution.name(),
                prover: request.assignment.as_ref().map(|a| a.prover.to_string()),
                program_id: program_key(&request.spec.program_id),
                proof_mode: request.spec.proof_mode.clone(),
                closed_at: request
                    .closed_at
                    .map(|t| to_i64("requests", &id, "closed_at", t))
                    .transpose()?,
                proof_artifact: request
                    .proof_artifact_id
                    .filter(|_| request.proof_deleted_at.is_none())
                    .map(|a| a.to_string()),
                id,
            });
        }
        for ((id, index), new) in bids {
            let request_id = id.to_string();
            rows.bids.push(BidRow {
                at_ms: to_i64("bids", &request_id, "at_ms", new.bid.at_ms)?,
                seq: i64::from(index),
                prover: new.bid.prover.to_string(),
                price_per_pgu: new.bid.price_per_pgu.to_string(),
                request_id,
            });
        }
        if let Some(totals) = ledger {
            rows.ledger = Some(to_json("ledger", "1", totals)?);
        }
        Ok(rows)
    }

    /// Whether there is nothing to write.
    pub(super) fn is_empty(&self) -> bool {
        self.accounts.is_empty()
            && self.provers.is_empty()
            && self.programs.is_empty()
            && self.requests.is_empty()
            && self.bids.is_empty()
            && self.ledger.is_none()
    }
}

fn encode_err(table: &'static str, key: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Encode { table, key: key.to_owned(), reason: err.to_string() }
}

fn to_json(table: &'static str, key: &str, value: &impl Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|err| encode_err(table, key, err))
}

fn to_i64(table: &'static str, key: &str, column: &str, value: u64) -> Result<i64> {
    i64::try_from(value)
        .map_err(|_| encode_err(table, key, format!("{column} = {value} does not fit a BIGINT")))
}
