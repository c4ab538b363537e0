-- Asking for an undo (producer.control.undo_import); the undo itself runs on
-- the workers (core.undo).
-- Named statements: a block runs from its "-- name: NAME" line to the next.

-- name: live_undo_of_import
-- The latest undo of import $1 that is not cancelled or failed: asking again
-- returns it rather than starting a second one.
SELECT id, state FROM imports
WHERE undoes = $1 AND state NOT IN ('cancelled', 'failed')
ORDER BY id DESC
LIMIT 1;

-- name: insert_undo
-- The undo of import $2, an import of mode undo of the same tenant, with its
-- progress row and one counter shard (its progress time, for the stall check).
WITH undo AS (
    INSERT INTO imports (tenant_id, mode, invites, filename, columns, undoes, token_id)
    VALUES ($1, 'undo', 'none', $3, $4, $2, $5)
    RETURNING id
), progress AS (
    INSERT INTO undos (import_id) SELECT id FROM undo
), counters AS (
    INSERT INTO import_counters (import_id, shard) SELECT id, 0 FROM undo
)
SELECT id FROM undo;

-- name: lock_import_for_undo
-- Two requests to undo one import at once: the second waits, then finds the first's undo.
SELECT id FROM imports WHERE id = $1 FOR UPDATE;
