-- Type and subject filters on events go through ranges instead of per-event indexes: each
-- commit records, per type (kind 't') and per subject (kind 's') among its events, the first and
-- last seq. Two index entries per event cost a third of the store's insert time; a few rows per
-- commit do not. Existing events get ranges of 1024 seqs.
CREATE TABLE event_ranges (
    kind      TEXT    NOT NULL,
    key       TEXT    NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq  INTEGER NOT NULL
);
CREATE INDEX event_ranges_last ON event_ranges (kind, key, last_seq);
INSERT INTO event_ranges (kind, key, first_seq, last_seq)
    SELECT 't', type, min(seq), max(seq) FROM events GROUP BY type, seq / 1024;
INSERT INTO event_ranges (kind, key, first_seq, last_seq)
    SELECT 's', subject, min(seq), max(seq) FROM events WHERE subject <> '' GROUP BY subject, seq / 1024;
DROP INDEX events_type_seq;
DROP INDEX events_subject_seq;
