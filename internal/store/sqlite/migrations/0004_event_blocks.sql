-- Type and subject filters on events go through block ranges instead of per-event indexes:
-- each commit records, per type and per subject, the first and last seq of its events with it.
-- Two index entries per event cost a third of the store's insert time; a few rows per commit do
-- not. Existing events get blocks of 1024 seqs.
CREATE TABLE event_type_blocks (
    type      TEXT    NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq  INTEGER NOT NULL
);
CREATE INDEX event_type_blocks_last ON event_type_blocks (type, last_seq);
CREATE TABLE event_subject_blocks (
    subject   TEXT    NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq  INTEGER NOT NULL
);
CREATE INDEX event_subject_blocks_last ON event_subject_blocks (subject, last_seq);
INSERT INTO event_type_blocks (type, first_seq, last_seq)
    SELECT type, min(seq), max(seq) FROM events GROUP BY type, seq / 1024;
INSERT INTO event_subject_blocks (subject, first_seq, last_seq)
    SELECT subject, min(seq), max(seq) FROM events WHERE subject <> '' GROUP BY subject, seq / 1024;
DROP INDEX events_type_seq;
DROP INDEX events_subject_seq;
