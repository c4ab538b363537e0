-- 0005: when an import last made progress.
-- Each outcome counter shard records when a row batch last counted into it,
-- so the latest of an import's shards is when a row of it last settled. An
-- unfinished import that has not moved for a while and has no message left in
-- Redis is stalled (see worker/recovery.py); this answers the first half
-- without scanning the import's rows.

ALTER TABLE import_counters ADD COLUMN progressed_at timestamptz;

-- Housekeeping looks at the unfinished imports every pass: few among many.
CREATE INDEX imports_unfinished ON imports (id) WHERE state IN ('queued', 'running', 'finalizing');
