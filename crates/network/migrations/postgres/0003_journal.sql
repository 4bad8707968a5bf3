-- Hot standby (issue 16): every commit of the leader also appends the operations it wrote, in
-- order and with their events, so that standbys follow the market as it changes (and serve
-- reads and subscriptions) instead of loading it when they take over. Only the last rows are
-- kept (the leader deletes older ones as it appends); a standby that falls further behind
-- loads the market again. PostgreSQL only: a SQLite network has no standby.
CREATE TABLE network_journal (
    seq   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    body  TEXT NOT NULL
);
