CREATE TABLE events (
    seq         BIGSERIAL PRIMARY KEY,
    id          TEXT   NOT NULL UNIQUE,
    type        TEXT   NOT NULL,
    source      TEXT   NOT NULL,
    subject     TEXT   NOT NULL DEFAULT '',
    time        BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    raw         BYTEA  NOT NULL
);
CREATE INDEX events_type_seq ON events (type, seq);
CREATE INDEX events_subject_seq ON events (subject, seq) WHERE subject <> '';

CREATE TABLE findings (
    seq          BIGSERIAL PRIMARY KEY,
    id           TEXT    NOT NULL UNIQUE,
    rule         TEXT    NOT NULL,
    severity     INTEGER NOT NULL,
    subject_kind TEXT    NOT NULL DEFAULT '',
    subject_name TEXT    NOT NULL DEFAULT '',
    time         BIGINT  NOT NULL,
    body         BYTEA   NOT NULL
);
CREATE INDEX findings_rule_seq ON findings (rule, seq);
CREATE INDEX findings_subject_seq ON findings (subject_name, seq);

CREATE TABLE alerts (
    seq         BIGSERIAL PRIMARY KEY,
    id          TEXT    NOT NULL UNIQUE,
    fingerprint TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    priority    DOUBLE PRECISION NOT NULL DEFAULT 0,
    last_seen   BIGINT  NOT NULL,
    body        BYTEA   NOT NULL
);
CREATE INDEX alerts_state ON alerts (state, seq);
CREATE INDEX alerts_fingerprint ON alerts (fingerprint);

CREATE TABLE assets (
    seq           BIGSERIAL PRIMARY KEY,
    kind          TEXT   NOT NULL,
    name          TEXT   NOT NULL,
    first_seen    BIGINT NOT NULL,
    last_seen     BIGINT NOT NULL,
    events        BIGINT NOT NULL DEFAULT 0,
    last_event_id TEXT   NOT NULL DEFAULT '',
    UNIQUE (kind, name)
);

CREATE TABLE tokens (
    hash       TEXT PRIMARY KEY,
    name       TEXT   NOT NULL,
    role       TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE state (
    key        TEXT PRIMARY KEY,
    value      BYTEA  NOT NULL,
    updated_at BIGINT NOT NULL
);
