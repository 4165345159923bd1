-- The assets table is now written in aggregate, at most once a second; this row says up to which
-- event it is complete. Databases from before already reflect every stored event.
INSERT INTO state (key, value, updated_at)
SELECT 'store.assets_seq', CAST(COALESCE(MAX(seq), 0) AS TEXT), 0 FROM events
WHERE true
ON CONFLICT (key) DO NOTHING;
