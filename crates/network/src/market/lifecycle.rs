//! A request's life outside the auction: opened ([`Market::request_proof`]), executed, cancelled,
//! proven (submitted, then accepted or rejected by the verifier), failed by its prover, or
//! closed when its deadline passes ([`Market::sweep`]), with the refunds, payments and
//! penalties of each close.

use provernet_types::{Address, Amount, ArtifactId, RequestId, RequestSpec};

use super::{
    Event, Execution, Market, MarketError, Outcome, PendingProof, Request, Result, Status, Touched,
    ledger::share, status_name,
};

impl Market {
    /// Checks, without changing anything, the nonce of `requester` and that it can lock
    /// `worst_case` for a request: the caller runs this before any work on the request's inputs.
    pub fn check_request(&self, requester: &Address, nonce: u64, worst_case: Amount) -> Result<()> {
        self.check_nonce(requester, nonce)?;
        self.check_spend(requester, worst_case)
    }

    /// Open requests whose deadline is at or before `now_secs`, and the next deadline after.
    pub fn due_deadlines(&self, now_secs: u64) -> (Vec<RequestId>, Option<u64>) {
        let due = self.open.iter().take_while(|(d, _)| *d <= now_secs).map(|(_, id)| *id).collect();
        let next = self.open.iter().find(|(d, _)| *d > now_secs).map(|(d, _)| *d);
        (due, next)
    }

    /// Opens a proof request and locks its worst-case cost from the requester's balance.
    ///
    /// The caller has checked the signature, the zkvm version and that the inputs artifact
    /// exists.
    pub fn request_proof(
        &mut self,
        requester: Address,
        nonce: u64,
        id: RequestId,
        spec: RequestSpec,
        now_ms: u64,
    ) -> Result<Outcome> {
        self.check_nonce(&requester, nonce)?;
        let now = now_ms / 1000;
        // Only open requests are in memory, but an id derives from a signed body that carries
        // the nonce just checked: a closed request's id cannot come again.
        if self.requests.contains_key(&id) {
            return Err(MarketError::DuplicateRequest(id));
        }
        spec.check_timing(now)?;
        if spec.gas_limit == 0 {
            return Err(MarketError::InvalidField {
                field: "gas_limit",
                reason: "must be above 0".into(),
            });
        }
        let program = self.programs.get(&spec.program_id).ok_or_else(|| {
            MarketError::UnknownProgram(format!("0x{}", hex::encode(&spec.program_id)))
        })?;
        if program.artifact_id != spec.program_artifact_id
            || program.zkvm_version != spec.zkvm_version
        {
            return Err(MarketError::InvalidField {
                field: "program_artifact_id",
                reason: format!(
                    "program 0x{} is registered as artifact {} for {}",
                    hex::encode(&spec.program_id),
                    program.artifact_id,
                    program.zkvm_version
                ),
            });
        }
        let lock = spec.max_cost().map_err(MarketError::overflow("worst-case cost"))?;
        self.check_spend(&requester, lock)?;
        let mut touched = Touched::default();
        self.use_nonce(&requester, &mut touched);
        self.debit(&requester, lock);
        if let Some(a) = self.accounts.get_mut(&requester) {
            a.locked = Amount::new(a.locked.get() + lock.get());
        }
        self.open.insert((spec.deadline, id));
        self.requests.insert(
            id,
            Request {
                id,
                requester,
                spec,
                status: Status::Requested,
                execution: Execution::Unexecuted,
                lock,
                created_at: now,
                bids: Vec::new(),
                assignment: None,
                closed_at: None,
                close_reason: None,
                paid: Amount::ZERO,
                proof_artifact_id: None,
                pending_proof: None,
                rejected_proof: None,
                proof_deleted_at: None,
            },
        );
        touched.requests.insert(id);
        touched.events.push(Event::Created(id));
        Ok(self.finish(touched))
    }

    /// Records the executor's result. An unexecutable request is closed at once.
    pub fn record_execution(
        &mut self,
        id: RequestId,
        result: std::result::Result<(u64, Vec<u8>), String>,
        now_ms: u64,
    ) -> Result<Outcome> {
        // Not in memory: closed (cancelled, expired) and evicted meanwhile.
        let Some(request) = self.requests.get(&id) else { return Ok(Outcome::default()) };
        if request.execution != Execution::Unexecuted || request.status != Status::Requested {
            // Cancelled or expired meanwhile: nothing to record.
            return Ok(Outcome::default());
        }
        let result = match (result, request.spec.expected_outputs_hash) {
            (Ok((_, outputs)), Some(expected))
                if *blake3::hash(&outputs).as_bytes() != expected =>
            {
                Err(format!(
                    "public outputs hash to 0x{}, not the expected 0x{}",
                    blake3::hash(&outputs).to_hex(),
                    hex::encode(expected)
                ))
            }
            (result, _) => result,
        };
        let mut touched = Touched::default();
        match result {
            Ok((pgus, outputs)) => {
                if let Some(r) = self.requests.get_mut(&id) {
                    r.execution = Execution::Executed { pgus, outputs };
                }
                touched.events.push(Event::Executed(id));
            }
            Err(reason) => {
                if let Some(r) = self.requests.get_mut(&id) {
                    r.execution = Execution::Unexecutable { reason: reason.clone() };
                }
                let penalty = share(self.requests[&id].lock, self.config.unexecutable_penalty_bps);
                self.ledger.treasury = Amount::new(self.ledger.treasury.get() + penalty.get());
                touched.ledger = true;
                self.close(
                    id,
                    Status::Unfulfillable,
                    Some(format!("unexecutable: {reason}")),
                    penalty,
                    now_ms,
                    &mut touched,
                );
                touched.events.push(Event::Unexecutable(id));
            }
        }
        touched.requests.insert(id);
        Ok(self.finish(touched))
    }

    /// Closes request `id`: releases its lock to the requester less `kept` (already moved
    /// elsewhere by the caller).
    fn close(
        &mut self,
        id: RequestId,
        status: Status,
        reason: Option<String>,
        kept: Amount,
        now_ms: u64,
        touched: &mut Touched,
    ) {
        let Some(request) = self.requests.get_mut(&id) else { return };
        request.status = status;
        request.closed_at = Some(now_ms / 1000);
        request.close_reason = reason;
        let (requester, lock, deadline) = (request.requester, request.lock, request.spec.deadline);
        self.open.remove(&(deadline, id));
        *self
            .ledger
            .closed_requests
            .get_or_insert_default()
            .entry(status_name(status).to_owned())
            .or_insert(0) += 1;
        touched.ledger = true;
        if let Some(account) = self.accounts.get_mut(&requester) {
            account.locked = Amount::new(account.locked.get() - lock.get());
            account.balance = Amount::new(account.balance.get() + lock.get() - kept.get());
        }
        touched.accounts.insert(requester);
        touched.requests.insert(id);
    }

    /// Cancels a request before assignment, refunding its lock.
    pub fn cancel(
        &mut self,
        signer: Address,
        nonce: u64,
        id: RequestId,
        now_ms: u64,
    ) -> Result<Outcome> {
        self.check_nonce(&signer, nonce)?;
        let request = self.requests.get(&id).ok_or(MarketError::UnknownRequest(id))?;
        if request.requester != signer {
            return Err(MarketError::Unauthorized {
                signer,
                action: "cancel another account's request",
            });
        }
        if request.status != Status::Requested {
            return Err(MarketError::WrongStatus {
                id,
                status: request.status,
                action: "be cancelled",
            });
        }
        let mut touched = Touched::default();
        self.use_nonce(&signer, &mut touched);
        self.close(
            id,
            Status::Cancelled,
            Some("cancelled by the requester".into()),
            Amount::ZERO,
            now_ms,
            &mut touched,
        );
        touched.events.push(Event::Cancelled(id));
        Ok(self.finish(touched))
    }

    /// The assigned prover submits a proof (stored as `proof`) for the verifier: uses the nonce
    /// and marks the request as verifying. Verification happens outside the market, so that the
    /// prover's nonce is not held while it runs; [`Market::accept_proof`] or
    /// [`Market::reject_proof`] records its verdict.
    pub fn submit_proof(
        &mut self,
        signer: Address,
        nonce: u64,
        id: RequestId,
        prover: Address,
        proof: ArtifactId,
        now_ms: u64,
    ) -> Result<Outcome> {
        self.check_fulfil(&signer, nonce, &id, &prover)?;
        let request = &self.requests[&id];
        // A proof that arrives after the deadline is late even if the sweeper has not run yet.
        if now_ms / 1000 >= request.spec.deadline {
            return Err(MarketError::DeadlinePassed {
                deadline: request.spec.deadline,
                now: now_ms / 1000,
            });
        }
        if request.pgus().is_none() {
            return Err(MarketError::NotExecuted(id));
        }
        if request.pending_proof.is_some() {
            return Err(MarketError::ProofPending(id));
        }
        let mut touched = Touched::default();
        self.use_nonce(&signer, &mut touched);
        if let Some(r) = self.requests.get_mut(&id) {
            r.pending_proof = Some(PendingProof { artifact: proof, submitted_at_ms: now_ms });
        }
        touched.requests.insert(id);
        touched.events.push(Event::ProofSubmitted(id));
        Ok(self.finish(touched))
    }

    /// The verifier accepted the pending proof of request `id`: pays the prover, refunds the
    /// rest, returns the collateral. The proof was submitted before the deadline, so it counts
    /// even if verification ends after it.
    pub fn accept_proof(&mut self, id: RequestId, now_ms: u64) -> Result<Outcome> {
        let request = self.requests.get(&id).ok_or(MarketError::UnknownRequest(id))?;
        let (Status::Assigned, Some(pending)) = (request.status, &request.pending_proof) else {
            return Err(MarketError::NoPendingProof(id));
        };
        let (assignment, pgus) = match (&request.assignment, request.pgus()) {
            (Some(a), Some(pgus)) => (a.clone(), pgus),
            _ => return Err(MarketError::NotExecuted(id)),
        };
        let proof = pending.artifact;
        let price = request
            .spec
            .cost(assignment.price_per_pgu, pgus)
            .map_err(MarketError::overflow("price"))?;
        // The bid was at most max_price_per_pgu and pgus at most gas_limit, so price ≤ lock.
        let price = price.min(request.lock);
        let prover = assignment.prover;
        let mut touched = Touched::default();
        self.close(id, Status::Fulfilled, None, price, now_ms, &mut touched);
        self.credit(&prover, price);
        if let Some(p) = self.provers.get_mut(&prover) {
            p.collateral = Amount::new(p.collateral.get() - assignment.collateral.get());
        }
        if let Some(r) = self.requests.get_mut(&id) {
            r.paid = price;
            r.proof_artifact_id = Some(proof);
            r.pending_proof = None;
        }
        touched.provers.insert(prover);
        touched.accounts.insert(prover);
        touched.events.push(Event::Fulfilled(id));
        Ok(self.finish(touched))
    }

    /// The verifier rejected the pending proof of request `id` for `reason`: the request stays
    /// assigned, so its prover may submit another, until the deadline; past the deadline it is
    /// missed at once.
    pub fn reject_proof(&mut self, id: RequestId, reason: &str, now_ms: u64) -> Result<Outcome> {
        let request = self.requests.get(&id).ok_or(MarketError::UnknownRequest(id))?;
        if request.status != Status::Assigned || request.pending_proof.is_none() {
            return Err(MarketError::NoPendingProof(id));
        }
        let past_deadline = now_ms / 1000 >= request.spec.deadline;
        let reason: String = reason.chars().take(MAX_REASON_CHARS).collect();
        let mut touched = Touched::default();
        if let Some(r) = self.requests.get_mut(&id) {
            r.pending_proof = None;
            r.rejected_proof = Some(reason.clone());
        }
        touched.requests.insert(id);
        touched.events.push(Event::ProofRejected(id));
        if past_deadline {
            self.miss(
                id,
                format!("the proof submitted was rejected: {reason}"),
                now_ms,
                &mut touched,
            );
        }
        Ok(self.finish(touched))
    }

    /// Submits and accepts a proof in one step, for callers that verified it themselves (the
    /// market simulation).
    pub fn fulfill(
        &mut self,
        signer: Address,
        nonce: u64,
        id: RequestId,
        prover: Address,
        proof: ArtifactId,
        now_ms: u64,
    ) -> Result<Outcome> {
        let mut outcome = self.submit_proof(signer, nonce, id, prover, proof, now_ms)?;
        outcome.merge(self.accept_proof(id, now_ms)?);
        Ok(outcome)
    }

    /// Checks, without changing anything, that `signer` may fulfil request `id` for `prover`
    /// with `nonce` (so the caller can verify the proof before applying [`Market::fulfill`]).
    pub fn check_fulfil(
        &self,
        signer: &Address,
        nonce: u64,
        id: &RequestId,
        prover: &Address,
    ) -> Result<()> {
        self.check_assigned_action(signer, nonce, id, prover, "be fulfilled")
    }

    fn check_assigned_action(
        &self,
        signer: &Address,
        nonce: u64,
        id: &RequestId,
        prover: &Address,
        action: &'static str,
    ) -> Result<()> {
        self.check_nonce(signer, nonce)?;
        self.check_prover_signer(signer, prover)?;
        let request = self.requests.get(id).ok_or(MarketError::UnknownRequest(*id))?;
        if request.status != Status::Assigned {
            return Err(MarketError::WrongStatus { id: *id, status: request.status, action });
        }
        if request.assignment.as_ref().map(|a| a.prover) != Some(*prover) {
            return Err(MarketError::Unauthorized {
                signer: *signer,
                action: "act on a request assigned to another prover",
            });
        }
        Ok(())
    }

    /// The assigned prover gives up: the request closes now as at a missed deadline.
    pub fn fail(
        &mut self,
        signer: Address,
        nonce: u64,
        id: RequestId,
        prover: Address,
        reason: &str,
        now_ms: u64,
    ) -> Result<Outcome> {
        self.check_assigned_action(&signer, nonce, &id, &prover, "be failed")?;
        let mut touched = Touched::default();
        self.use_nonce(&signer, &mut touched);
        let reason: String = reason.chars().take(MAX_REASON_CHARS).collect();
        self.miss(id, format!("prover gave up: {reason}"), now_ms, &mut touched);
        Ok(self.finish(touched))
    }

    /// Closes every open request whose deadline has passed.
    pub fn sweep(&mut self, now_ms: u64) -> Outcome {
        let (due, _) = self.due_deadlines(now_ms / 1000);
        let mut touched = Touched::default();
        for id in due {
            let Some(request) = self.requests.get(&id) else { continue };
            match request.status {
                // Submitted in time: the verifier's verdict settles it.
                Status::Assigned if request.pending_proof.is_some() => {}
                Status::Assigned => self.miss(
                    id,
                    "deadline passed before a proof was accepted".into(),
                    now_ms,
                    &mut touched,
                ),
                Status::Requested => {
                    self.close(
                        id,
                        Status::Unfulfillable,
                        Some("deadline passed before assignment".into()),
                        Amount::ZERO,
                        now_ms,
                        &mut touched,
                    );
                    touched.events.push(Event::Unfulfillable(id));
                }
                _ => {}
            }
        }
        self.finish(touched)
    }

    /// An assigned request missed: refund the requester, hand them the collateral, count the miss.
    fn miss(&mut self, id: RequestId, reason: String, now_ms: u64, touched: &mut Touched) {
        let Some(assignment) = self.requests.get(&id).and_then(|r| r.assignment.clone()) else {
            return;
        };
        let requester = self.requests[&id].requester;
        self.close(id, Status::Unfulfillable, Some(reason), Amount::ZERO, now_ms, touched);
        let now = now_ms / 1000;
        let (window, limit, cooldown) =
            (self.config.miss_window_secs, self.config.miss_limit, self.config.suspension_secs);
        if let Some(p) = self.provers.get_mut(&assignment.prover) {
            p.collateral = Amount::new(p.collateral.get() - assignment.collateral.get());
            p.stake = Amount::new(p.stake.get() - assignment.collateral.get());
            p.misses.retain(|t| t + window > now);
            p.misses.push(now);
            if limit > 0 && p.misses.len() as u32 >= limit {
                p.suspended_until = now + cooldown;
                p.misses.clear();
            }
        }
        if let Some(a) = self.accounts.get_mut(&requester) {
            a.balance = Amount::new(a.balance.get() + assignment.collateral.get());
        }
        touched.provers.insert(assignment.prover);
        touched.events.push(Event::Unfulfillable(id));
    }
}

/// Longest reason (a prover's for giving up, the verifier's for a rejection) kept, in characters.
pub(super) const MAX_REASON_CHARS: usize = 500;
