-- The Store's schema on PostgreSQL. Payloads are opaque bytes encoded by the caller.

CREATE TABLE journal (
    seq     BIGINT PRIMARY KEY CHECK (seq >= 1),
    at_ms   BIGINT NOT NULL,
    payload BYTEA  NOT NULL
);

-- A snapshot with seq n covers every journal entry with seq <= n. Only the newest two
-- are kept; seq 0 is allowed for a state taken before any input.
CREATE TABLE snapshots (
    seq         BIGINT PRIMARY KEY CHECK (seq >= 0),
    state_hash  TEXT   NOT NULL,
    taken_at_ms BIGINT NOT NULL,
    payload     BYTEA  NOT NULL
);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
