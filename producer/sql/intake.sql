-- Recording an import and its tenant (producer.submit, producer.control, producer.timezones).
-- Named statements: a block runs from its "-- name: NAME" line to the next.

-- name: ensure_tenant
-- Tenants are created on their first import, named after their id.
INSERT INTO tenants (id, name) VALUES ($1, $1)
ON CONFLICT (id) DO NOTHING;

-- name: get_tenant
SELECT id, name, timezone, default_language FROM tenants WHERE id = $1;

-- name: upsert_tenant
INSERT INTO tenants (id, name, timezone, default_language)
VALUES ($1, coalesce($2, $1), coalesce($3, 'UTC'), coalesce($4, 'en'))
ON CONFLICT (id) DO UPDATE
SET name = coalesce($2, tenants.name), timezone = coalesce($3, tenants.timezone),
    default_language = coalesce($4, tenants.default_language)
RETURNING id, name, timezone, default_language;

-- name: insert_import
INSERT INTO imports (tenant_id, mode, invites, send_at, allow_mass_deactivation,
                     filename, columns, idempotency_key)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING id;

-- name: find_import_by_idempotency_key
SELECT id FROM imports WHERE tenant_id = $1 AND idempotency_key = $2;

-- name: insert_import_counters
INSERT INTO import_counters (import_id, shard)
SELECT $1, shard FROM generate_series(0, $2 - 1) AS shard;

-- name: analyze_recorded_rows
-- Run after a large COPY, inside the recording transaction (see submit.py).
ANALYZE import_rows;

-- name: reject_duplicate_emails
-- Later rows repeating an e-mail (already lower-cased) are invalid; the first
-- occurrence stands and is named in the message. The repeats are found once
-- (MATERIALIZED): planned on stale statistics, the window over the import's
-- rows was otherwise re-run for every row of the import.
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

-- name: set_import_totals
UPDATE imports
SET total_rows = t.total, invalid_rows = t.invalid, blank_rows = $2
FROM (SELECT count(*) AS total, count(*) FILTER (WHERE status = 'invalid') AS invalid
      FROM import_rows WHERE import_id = $1) t
WHERE id = $1
RETURNING total_rows;
