-- The history leaves memory (issue 18): closed requests are read from here, filtered by the
-- plain columns below (every filter the APIs offer has one, and an index ordered as pages
-- are: created_at, id), and bids become rows of their own, inserted once.
--
-- The new columns stay NULL on rows written before this migration until the store's upgrade
-- step (run by SqlStore::open, in batches) fills them from `data` and moves each row's bids
-- into `bids`: the decoding of `data` lives in one place, the Rust code.

ALTER TABLE requests ADD COLUMN execution TEXT;
ALTER TABLE requests ADD COLUMN prover TEXT;
ALTER TABLE requests ADD COLUMN deadline BIGINT;
ALTER TABLE requests ADD COLUMN program_id TEXT;
ALTER TABLE requests ADD COLUMN proof_mode TEXT;
-- when it closed, and its proof artifact while the network keeps it (for proof retention)
ALTER TABLE requests ADD COLUMN closed_at BIGINT;
ALTER TABLE requests ADD COLUMN proof_artifact TEXT;

-- key: the request id and the bid's place in its auction (0, 1, ...); prices as decimal text
CREATE TABLE bids (
    request_id    TEXT NOT NULL,
    seq           BIGINT NOT NULL,
    prover        TEXT NOT NULL,
    price_per_pgu TEXT NOT NULL,
    at_ms         BIGINT NOT NULL,
    PRIMARY KEY (request_id, seq)
);
CREATE INDEX bids_prover ON bids (prover, request_id);

DROP INDEX requests_status;
DROP INDEX requests_requester;
CREATE INDEX requests_page ON requests (created_at, id);
CREATE INDEX requests_status ON requests (status, created_at, id);
CREATE INDEX requests_requester ON requests (requester, created_at, id);
CREATE INDEX requests_prover ON requests (prover, created_at, id);
CREATE INDEX requests_zkvm_version ON requests (zkvm_version, created_at, id);
CREATE INDEX requests_program ON requests (program_id, created_at, id);
CREATE INDEX requests_execution ON requests (execution, created_at, id);
CREATE INDEX requests_proof_mode ON requests (proof_mode, created_at, id);
CREATE INDEX requests_deadline ON requests (deadline);
CREATE INDEX requests_proofs_kept ON requests (closed_at) WHERE proof_artifact IS NOT NULL;
CREATE INDEX requests_proof_artifact ON requests (proof_artifact) WHERE proof_artifact IS NOT NULL;
-- the gauges' count of closed requests by status, read from the index alone
CREATE INDEX requests_closed ON requests (status, closed_at);
CREATE INDEX requests_unconverted ON requests (id) WHERE execution IS NULL;
