//! Why a market operation was refused. Each refusal leaves the market unchanged.

use provernet_types::{Address, Amount, AmountArithmeticError, FieldError, RequestId};

use super::Status;

/// A market result.
pub type Result<T, E = MarketError> = std::result::Result<T, E>;

/// Why an operation was refused; the message says what to do where it can.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarketError {
    /// The body's nonce is not the account's current nonce.
    #[error(
        "nonce {got} is not the current nonce {expected} of {account}: fetch the account and sign again"
    )]
    BadNonce {
        /// The signer.
        account: Address,
        /// The nonce the body carried.
        got: u64,
        /// The nonce the network expects.
        expected: u64,
    },
    /// Not enough spendable balance.
    #[error("{account} has {available} spendable, {needed} is needed: deposit more")]
    InsufficientBalance {
        /// The account.
        account: Address,
        /// What it has.
        available: Amount,
        /// What the operation needs.
        needed: Amount,
    },
    /// A computed amount overflowed.
    #[error("amount overflow in {what}: {source}")]
    Overflow {
        /// What was being computed.
        what: &'static str,
        /// The arithmetic error.
        source: AmountArithmeticError,
    },
    /// A field is out of range.
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Deposits through the faucet are off on this network.
    #[error("the faucet is disabled on this network: ask its operator for an admin deposit")]
    FaucetDisabled,
    /// The signer may not make this call.
    #[error("{signer} may not {action}")]
    Unauthorized {
        /// Who signed.
        signer: Address,
        /// What they tried.
        action: &'static str,
    },
    /// The account is not a registered prover.
    #[error("{0} is not a registered prover: register with RegisterProver first")]
    NotAProver(Address),
    /// The prover is already registered.
    #[error("{0} is already a registered prover")]
    AlreadyAProver(Address),
    /// The program is not registered.
    #[error("program {0} is not registered: register it with RegisterProgram first")]
    UnknownProgram(String),
    /// A program id is registered under another name or artifact.
    #[error("program {0} is already registered")]
    ProgramExists(String),
    /// No request has this id.
    #[error("no proof request {0}")]
    UnknownRequest(RequestId),
    /// A request with this id exists (the same body was submitted twice).
    #[error("proof request {0} already exists")]
    DuplicateRequest(RequestId),
    /// The request is not in a state that allows the operation.
    #[error("proof request {id} is {status:?}, so it cannot {action}")]
    WrongStatus {
        /// The request.
        id: RequestId,
        /// Its status.
        status: Status,
        /// What was tried.
        action: &'static str,
    },
    /// The request has not been executed yet (or is unexecutable), so it takes no bids.
    #[error("proof request {0} is not executed yet: bid once its PGUs are published")]
    NotExecuted(RequestId),
    /// A bid above the request's ceiling.
    #[error("price {price} per PGU is above the request's maximum {max}")]
    PriceTooHigh {
        /// The bid.
        price: Amount,
        /// The request's `max_price_per_pgu`.
        max: Amount,
    },
    /// The prover is not on the request's whitelist.
    #[error("prover {0} is not on the request's whitelist")]
    NotWhitelisted(Address),
    /// The prover is suspended after repeated misses.
    #[error("prover {prover} is suspended until {until} (unix seconds) after repeated misses")]
    Suspended {
        /// The prover.
        prover: Address,
        /// When the suspension ends.
        until: u64,
    },
    /// The prover's free stake does not cover the collateral.
    #[error("prover {prover} has {free} free stake, the collateral is {needed}: add stake")]
    InsufficientStake {
        /// The prover.
        prover: Address,
        /// Its free stake.
        free: Amount,
        /// The collateral needed.
        needed: Amount,
    },
    /// A stake withdrawal asks for more than the stake that no assignment holds as collateral.
    #[error(
        "prover {prover} cannot withdraw {asked}: its free stake is {free} ({collateral} is held as collateral for assigned requests)"
    )]
    StakeLocked {
        /// The prover.
        prover: Address,
        /// The amount the withdrawal asked for.
        asked: Amount,
        /// Its free stake.
        free: Amount,
        /// Its stake locked as collateral.
        collateral: Amount,
    },
    /// A proof of the request is being verified: wait for its verdict before submitting another.
    #[error("a proof of request {0} is being verified: wait for its verdict")]
    ProofPending(RequestId),
    /// The request has no submitted proof awaiting the verifier.
    #[error("request {0} has no proof awaiting verification")]
    NoPendingProof(RequestId),
    /// The deadline has passed.
    #[error("deadline {deadline} has passed (now {now}, unix seconds)")]
    DeadlinePassed {
        /// The request's deadline.
        deadline: u64,
        /// The network's clock.
        now: u64,
    },
}

impl From<FieldError> for MarketError {
    fn from(e: FieldError) -> Self {
        let field = e.field();
        let reason = match e {
            FieldError::Invalid { reason, .. } => reason,
            other => other.to_string(),
        };
        Self::InvalidField { field, reason }
    }
}

impl MarketError {
    pub(crate) fn overflow(what: &'static str) -> impl FnOnce(AmountArithmeticError) -> Self {
        move |source| Self::Overflow { what, source }
    }
}
