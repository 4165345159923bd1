ALTER TABLE alerts ADD COLUMN rule TEXT NOT NULL DEFAULT '';
CREATE INDEX alerts_rule_state ON alerts (rule, state);
CREATE UNIQUE INDEX alerts_open_fingerprint ON alerts (fingerprint) WHERE state IN ('firing', 'acknowledged');

CREATE TABLE silences (
    id         TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    ends_at    BIGINT NOT NULL,
    body       BYTEA  NOT NULL
);
CREATE INDEX silences_ends ON silences (ends_at);

CREATE TABLE alert_groups (
    key  TEXT PRIMARY KEY,
    body BYTEA NOT NULL
);

CREATE TABLE outbox (
    seq        BIGSERIAL PRIMARY KEY,
    key        TEXT    NOT NULL UNIQUE,
    receiver   TEXT    NOT NULL,
    group_key  TEXT    NOT NULL,
    state      TEXT    NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_at    BIGINT  NOT NULL,
    created_at BIGINT  NOT NULL,
    done_at    BIGINT  NOT NULL DEFAULT 0,
    last_error TEXT    NOT NULL DEFAULT '',
    payload    BYTEA   NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_at);

CREATE TABLE actions (
    seq        BIGSERIAL PRIMARY KEY,
    id         TEXT  NOT NULL UNIQUE,
    key        TEXT  NOT NULL UNIQUE,
    alert_id   TEXT  NOT NULL,
    status     TEXT  NOT NULL,
    body       BYTEA NOT NULL
);
CREATE INDEX actions_status ON actions (status, seq);
