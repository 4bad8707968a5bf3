-- The market's entities, each stored whole as JSON in `data`, with a few plain columns copied
-- out of it for operators' SQL queries. The JSON is authoritative; the plain columns are
-- rewritten from it on every write.

-- key: the account's 0x-prefixed hex address
CREATE TABLE accounts (
    address TEXT PRIMARY KEY NOT NULL,
    data    TEXT NOT NULL
);

-- key: the owner's 0x-prefixed hex address
CREATE TABLE provers (
    owner    TEXT PRIMARY KEY NOT NULL,
    operator TEXT NOT NULL,
    data     TEXT NOT NULL
);
CREATE INDEX provers_operator ON provers (operator);

-- key: the backend's program id as 0x-prefixed hex
CREATE TABLE programs (
    program_id    TEXT PRIMARY KEY NOT NULL,
    name          TEXT NOT NULL,
    zkvm_version  TEXT NOT NULL,
    registered_at BIGINT NOT NULL,
    data          TEXT NOT NULL
);
CREATE INDEX programs_name ON programs (name);

-- key: the request id as 0x-prefixed hex; status as in the JSON ('Requested', 'Assigned', ...)
CREATE TABLE requests (
    id           TEXT PRIMARY KEY NOT NULL,
    status       TEXT NOT NULL,
    requester    TEXT NOT NULL,
    zkvm_version TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    data         TEXT NOT NULL
);
CREATE INDEX requests_status ON requests (status);
CREATE INDEX requests_requester ON requests (requester);

-- one row: the ledger totals that are not the sum of any entity
CREATE TABLE ledger (
    id   INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    data TEXT NOT NULL
);
