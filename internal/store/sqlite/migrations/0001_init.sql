-- Events as received, in arrival order. Times are Unix nanoseconds.
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT    NOT NULL UNIQUE,
    type        TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    subject     TEXT    NOT NULL DEFAULT '',
    time        INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    raw         BLOB    NOT NULL
);
CREATE INDEX events_type_seq ON events (type, seq);
CREATE INDEX events_subject_seq ON events (subject, seq) WHERE subject <> '';

CREATE TABLE findings (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT    NOT NULL UNIQUE,
    rule         TEXT    NOT NULL,
    severity     INTEGER NOT NULL,
    subject_kind TEXT    NOT NULL DEFAULT '',
    subject_name TEXT    NOT NULL DEFAULT '',
    time         INTEGER NOT NULL,
    body         BLOB    NOT NULL
);
CREATE INDEX findings_rule_seq ON findings (rule, seq);
CREATE INDEX findings_subject_seq ON findings (subject_name, seq);

CREATE TABLE alerts (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT    NOT NULL UNIQUE,
    fingerprint TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    priority    REAL    NOT NULL DEFAULT 0,
    last_seen   INTEGER NOT NULL,
    body        BLOB    NOT NULL
);
CREATE INDEX alerts_state ON alerts (state, seq);
CREATE INDEX alerts_fingerprint ON alerts (fingerprint);

CREATE TABLE assets (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    first_seen    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL,
    events        INTEGER NOT NULL DEFAULT 0,
    last_event_id TEXT    NOT NULL DEFAULT '',
    UNIQUE (kind, name)
);

CREATE TABLE tokens (
    hash       TEXT PRIMARY KEY,
    name       TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

-- Small named blobs: rule engine snapshots and the like.
CREATE TABLE state (
    key        TEXT PRIMARY KEY,
    value      BLOB    NOT NULL,
    updated_at INTEGER NOT NULL
);
