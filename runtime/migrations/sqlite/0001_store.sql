-- The Store's schema on SQLite. Payloads are opaque bytes encoded by the caller.
-- seq INTEGER PRIMARY KEY is the rowid: appends go to the end of the table's b-tree.

CREATE TABLE journal (
    seq     INTEGER PRIMARY KEY NOT NULL CHECK (seq >= 1),
    at_ms   INTEGER NOT NULL,
    payload BLOB    NOT NULL
) STRICT;

-- A snapshot with seq n covers every journal entry with seq <= n. Only the newest two
-- are kept; seq 0 is allowed for a state taken before any input.
CREATE TABLE snapshots (
    seq         INTEGER PRIMARY KEY NOT NULL CHECK (seq >= 0),
    state_hash  TEXT    NOT NULL,
    taken_at_ms INTEGER NOT NULL,
    payload     BLOB    NOT NULL
) STRICT;

CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
) STRICT;
