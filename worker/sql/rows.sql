-- Applying a batch of import rows, idempotently (worker.rows).
-- Named statements: a block runs from its "-- name: NAME" line to the next.

-- name: claim_finalize
-- Moves a running import whose rows have all settled to finalizing. Exactly
-- one caller wins the row lock, so the finalize message is sent once in effect.
UPDATE imports SET state = 'finalizing'
WHERE id = $1 AND state = 'running'
  AND total_rows - invalid_rows <= (
      SELECT coalesce(sum(created + updated + unchanged + skipped + failed), 0)
      FROM import_counters WHERE import_id = $1)
RETURNING id;

-- name: lock_import_for_rows
-- A share lock: row batches run side by side, while cancel (which updates the
-- import) waits for the batches in flight and every later batch sees it.
SELECT tenant_id, mode, state FROM imports WHERE id = $1 FOR SHARE;

-- name: lock_pending_rows
SELECT row_number, email, data FROM import_rows
WHERE import_id = $1 AND row_number = ANY($2::int[]) AND status = 'pending'
ORDER BY row_number
FOR UPDATE;

-- name: lock_people
-- Sorted, so concurrent batches lock people in one order and cannot deadlock.
SELECT id, email, first_name, last_name, job_title, role, language, location,
       primary_team_id, secondary_team_ids, status
FROM people WHERE tenant_id = $1 AND email = ANY($2::text[])
ORDER BY email
FOR UPDATE;

-- name: find_teams
-- Team ids for the given names, in the order given (NULL where none exists yet).
SELECT t.id
FROM unnest($2::text[]) WITH ORDINALITY AS wanted(name, ord)
LEFT JOIN teams t ON t.tenant_id = $1
                 AND t.name_key = lower(regexp_replace(wanted.name, '\s', '', 'g'))
ORDER BY wanted.ord;

-- name: insert_teams
-- Sorted so concurrent rows creating the same teams take locks in one order.
INSERT INTO teams (tenant_id, name)
SELECT $1, name FROM unnest($2::text[]) AS name
ORDER BY lower(regexp_replace(name, '\s', '', 'g'))
ON CONFLICT (tenant_id, name_key) DO NOTHING;

-- name: insert_people
-- Secondary team ids travel as array literals ('{1,2}'): unnest cannot take
-- an array of arrays of different lengths.
INSERT INTO people (tenant_id, email, first_name, last_name, job_title, role, language,
                    location, primary_team_id, secondary_team_ids, last_import_id)
SELECT $1, u.email, u.first_name, u.last_name, u.job_title, u.role, u.language, u.location,
       u.primary_team_id, u.secondary::bigint[], $2
FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
            $10::bigint[], $11::text[])
     AS u(email, first_name, last_name, job_title, role, language, location, primary_team_id, secondary)
ORDER BY u.email
ON CONFLICT (tenant_id, email) DO NOTHING
RETURNING id, email;

-- name: update_people
UPDATE people p
SET first_name = u.first_name, last_name = u.last_name, job_title = u.job_title, role = u.role,
    language = u.language, location = u.location, primary_team_id = u.primary_team_id,
    secondary_team_ids = u.secondary::bigint[], last_import_id = $2,
    status = 'active', deactivated_at = NULL, deactivated_by_import = NULL, updated_at = now()
FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
            $10::bigint[], $11::text[])
     AS u(id, first_name, last_name, job_title, role, language, location, primary_team_id, secondary)
WHERE p.tenant_id = $1 AND p.id = u.id;

-- name: settle_rows
UPDATE import_rows r
SET status = u.status, person_id = u.person_id, settled_at = now()
FROM unnest($2::int[], $3::text[], $4::bigint[]) AS u(row_number, status, person_id)
WHERE r.import_id = $1 AND r.row_number = u.row_number AND r.status = 'pending';

-- name: lock_import_row
SELECT status FROM import_rows WHERE import_id = $1 AND row_number = $2 FOR UPDATE;

-- name: settle_failed_row
UPDATE import_rows SET status = 'failed', errors = $3, settled_at = now()
WHERE import_id = $1 AND row_number = $2 AND status = 'pending';

-- name: count_outcomes
UPDATE import_counters
SET created = created + $3, updated = updated + $4, unchanged = unchanged + $5,
    skipped = skipped + $6, failed = failed + $7, progressed_at = now()
WHERE import_id = $1 AND shard = $2;
