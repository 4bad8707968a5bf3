-- The proving pool's tables (crates/node/src/pool): one node (the coordinator) and its workers
-- over one PostgreSQL database. Created by whichever process comes first, under an advisory lock.

-- What the node set up: who it is, the secret's digest, what it proves, and the queue's rules.
CREATE TABLE IF NOT EXISTS pool_meta (
    id            INT PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    node          TEXT NOT NULL,
    secret_digest BYTEA NOT NULL,
    versions      TEXT[] NOT NULL,
    lease_secs    INT NOT NULL,
    max_attempts  INT NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Each worker as it registered, and its last heartbeat (the database's clock).
CREATE TABLE IF NOT EXISTS pool_workers (
    id           TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    auth         BYTEA NOT NULL,
    versions     TEXT[] NOT NULL,
    cores        INT NOT NULL,
    slots        INT NOT NULL,
    memory_bytes BIGINT NOT NULL,
    gpus         INT NOT NULL,
    rates        TEXT NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL,
    stopped      BOOLEAN NOT NULL DEFAULT false,
    proved       BIGINT NOT NULL DEFAULT 0,
    failed       BIGINT NOT NULL DEFAULT 0
);

-- Programs and inputs of queued tasks, by content id (blake3).
CREATE TABLE IF NOT EXISTS pool_blobs (
    id         BYTEA PRIMARY KEY,
    bytes      BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One proving task per request: queued ─claim─▶ claimed ─hand back─▶ proved (or back to
-- queued when a lease expires or a proof is rejected; failed when its attempts are spent;
-- abandoned when the request closes).
CREATE TABLE IF NOT EXISTS pool_tasks (
    request_id   BYTEA PRIMARY KEY,
    version      TEXT NOT NULL,
    mode         TEXT NOT NULL,
    program      BYTEA NOT NULL,
    inputs       BYTEA NOT NULL,
    gas_limit    BIGINT NOT NULL,
    pgus         BIGINT NOT NULL,
    memory_bytes BIGINT NOT NULL,
    deadline     BIGINT NOT NULL,
    state        TEXT NOT NULL,
    worker_id    TEXT,
    attempts     INT NOT NULL DEFAULT 0,
    max_attempts INT NOT NULL,
    excluded     TEXT[] NOT NULL DEFAULT '{}',
    lease_until  TIMESTAMPTZ,
    proof        BYTEA,
    proof_mac    BYTEA,
    prove_secs   DOUBLE PRECISION,
    last_error   TEXT,
    blob_fault   BOOLEAN NOT NULL DEFAULT false,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS pool_tasks_open ON pool_tasks (deadline)
    WHERE state IN ('queued', 'claimed');
