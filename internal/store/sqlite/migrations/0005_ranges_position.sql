-- Small commits' event ranges are now written with a later commit (ranges.go); this row says up
-- to which event seq every event's ranges are in event_ranges. Databases from before wrote them
-- with every commit.
INSERT INTO state (key, value, updated_at)
SELECT 'store.ranges_seq', CAST(COALESCE(MAX(seq), 0) AS TEXT), 0 FROM events
WHERE true
ON CONFLICT (key) DO NOTHING;
