-- Recording an import (core.intake.submit).
-- Named statements: a block runs from its "-- name: NAME" line to the next.

-- name: insert_import
INSERT INTO imports (tenant_id, mode, invites, send_at, allow_mass_deactivation,
                     filename, columns, idempotency_key, blank_cells, token_id, external_id,
                     match_by, source_id, origin)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
RETURNING id;

-- name: find_import_by_idempotency_key
SELECT id FROM imports WHERE tenant_id = $1 AND idempotency_key = $2;

-- name: insert_import_counters
INSERT INTO import_counters (import_id, shard)
SELECT $1, shard FROM generate_series(0, $2 - 1) AS shard;

-- name: analyze_recorded_rows
-- Run right after a large import is committed (see submit.py): everything
-- planned over its rows from then on (team creation, dispatch, the workers'
-- batches, finalizing) must know they exist.
ANALYZE import_rows;

-- name: plan_without_nested_loops
-- For the rest of the recording transaction: its statements over the new
-- rows are planned before any statistics know them (they may describe one
-- small import of someone else, and estimate one row here). On such an
-- estimate every join of the import's rows with themselves was planned as a
-- nested loop over both, quadratic whatever the statement's shape (over 7
-- minutes at 150,000 rows; an EXISTS probe by the e-mail index too: the
-- planner then probes by import alone). Hash and merge joins are linear or
-- N log N at any size, so they are the only ones allowed here.
SET LOCAL enable_nestloop = off;

-- name: reject_duplicate_emails
-- Later rows repeating an e-mail (already lower-cased) are invalid; the first
-- occurrence stands and is named in the message. One sorted pass over the
-- import's rows finds the repeats (MATERIALIZED: computed once), then a merge
-- or hash join (plan_without_nested_loops) marks them.
WITH ranked AS MATERIALIZED (
    SELECT row_number, email, first_row
    FROM (SELECT row_number, email,
                 first_value(row_number) OVER (PARTITION BY email ORDER BY row_number) AS first_row
          FROM import_rows
          WHERE import_id = $1 AND email IS NOT NULL) numbered
    WHERE first_row <> row_number
)
UPDATE import_rows r
SET status = 'invalid',
    data = NULL,
    errors = coalesce(r.errors, '[]'::jsonb) || jsonb_build_array(jsonb_build_object(
        'column', $2::text,
        'value', r.raw ->> $3::int,
        'message', format('%s is already on row %s: each person may appear only once in a file',
                          ranked.email, ranked.first_row)))
FROM ranked
WHERE r.import_id = $1 AND r.row_number = ranked.row_number;

-- name: reject_duplicate_employee_ids
-- The same rule for Employee IDs (an id is unique per tenant, whatever the
-- match key): a later row repeating one is invalid and names the first row.
-- Run after reject_duplicate_emails, so a row repeating both says both.
WITH ranked AS MATERIALIZED (
    SELECT row_number, employee_id, first_row
    FROM (SELECT row_number, employee_id,
                 first_value(row_number) OVER (PARTITION BY employee_id ORDER BY row_number) AS first_row
          FROM import_rows
          WHERE import_id = $1 AND employee_id IS NOT NULL) numbered
    WHERE first_row <> row_number
)
UPDATE import_rows r
SET status = 'invalid',
    data = NULL,
    errors = coalesce(r.errors, '[]'::jsonb) || jsonb_build_array(jsonb_build_object(
        'column', $2::text,
        'value', r.raw ->> $3::int,
        'message', format('employee id %s is already on row %s: each person may appear only once in a file',
                          ranked.employee_id, ranked.first_row)))
FROM ranked
WHERE r.import_id = $1 AND r.row_number = ranked.row_number;

-- name: set_import_totals
-- $3: a valid row names its person by employee id or previous address, so
-- the import resolves its rows' identities when it starts (core.identity).
UPDATE imports
SET total_rows = t.total, invalid_rows = t.invalid, blank_rows = $2, identity_keys = $3
FROM (SELECT count(*) AS total, count(*) FILTER (WHERE status = 'invalid') AS invalid
      FROM import_rows WHERE import_id = $1) t
WHERE id = $1
RETURNING total_rows;
