-- An import's life after its rows are recorded: start, dispatch, finalize, sweep, end (core.imports).
-- Named statements: a block runs from its "-- name: NAME" line to the next.

-- name: import_tenant
SELECT tenant_id FROM imports WHERE id = $1;

-- name: oldest_queued_import
SELECT id FROM imports WHERE tenant_id = $1 AND state = 'queued' ORDER BY id LIMIT 1;

-- name: start_import
-- The partial unique index imports_one_active_per_tenant makes a second
-- concurrent start of the same tenant fail rather than run side by side.
UPDATE imports SET state = 'running', started_at = now()
WHERE id = $1 AND state = 'queued'
  AND NOT EXISTS (SELECT 1 FROM imports other
                  WHERE other.tenant_id = imports.tenant_id
                    AND other.state IN ('running', 'finalizing', 'blocked'))
RETURNING id;

-- name: lock_import
SELECT id, tenant_id, mode, state, allow_mass_deactivation, invites, send_at, unchanged_at_recording
FROM imports WHERE id = $1 FOR UPDATE;

-- name: pending_rows
-- One page of the rows not yet settled, after row $2. The dispatcher pages
-- with short statements rather than one long cursor: a transaction held open
-- while a million messages are sent would stop vacuum from reclaiming the
-- row versions the workers churn meanwhile (the counters most of all).
SELECT row_number FROM import_rows
WHERE import_id = $1 AND status = 'pending' AND row_number > $2
ORDER BY row_number
LIMIT $3;

-- name: rows_in_flight
-- Rows of the import sent and not yet settled: the pending ones among the $3
-- rows at or below the last row sent, $2 (the dispatcher sends in row order,
-- and the workers take rows first in, first out, so what is in flight lies
-- just below it). Bounded below so the count reads at most $3 entries of the
-- primary key whatever the import's size, and never the rows settled before:
-- counting every pending row up to $2 read them all on each call (EXPLAIN
-- ANALYZE, a million rows, half of them settled: 200-450 ms a count, a
-- sequential scan or an index scan through every settled row). A row still
-- retrying from further back is not counted: the cap is exceeded by that few.
SELECT count(*)::int FROM import_rows
WHERE import_id = $1 AND row_number > $2::int - $3::int AND row_number <= $2 AND status = 'pending';

-- name: import_idle_seconds
-- Seconds since a row of the import last settled (or since it started).
SELECT extract(epoch FROM now() - greatest(i.started_at,
                                           (SELECT max(c.progressed_at) FROM import_counters c
                                            WHERE c.import_id = i.id)))::float8
FROM imports i WHERE i.id = $1;

-- name: active_import_of_tenant
SELECT id FROM imports
WHERE tenant_id = $1 AND state IN ('running', 'finalizing', 'blocked');

-- name: create_import_teams
-- Creates, before any row runs, the teams an import names, spelled as first
-- written in the file (rows run concurrently, so leaving it to them would let
-- a later row's spelling win). Existing teams keep their spelling. In
-- add-only mode ($2, the vocabulary's name for it) rows of existing people are
-- skipped, so their teams are not made. The rows are selected by $1, not
-- through the import's row: the planner then estimates them from the
-- statistics of this import, not as half the table (which at a few million
-- rows of history made a 40-row import's statement look large enough to JIT).
INSERT INTO teams (tenant_id, name)
SELECT DISTINCT ON (lower(regexp_replace(named.name, '\s', '', 'g'))) i.tenant_id, named.name
FROM imports i
JOIN LATERAL (
    SELECT r.row_number, 0::bigint AS position, r.data ->> 'primary_team' AS name
    FROM import_rows r
    WHERE r.import_id = $1 AND r.status = 'pending' AND r.data ->> 'primary_team' IS NOT NULL
      AND (i.mode <> $2
           OR NOT EXISTS (SELECT 1 FROM people p WHERE p.tenant_id = i.tenant_id AND p.email = r.email))
    UNION ALL
    SELECT r.row_number, s.position, s.name
    FROM import_rows r
    CROSS JOIN LATERAL jsonb_array_elements_text(coalesce(r.data -> 'secondary_teams', '[]'))
         WITH ORDINALITY AS s(name, position)
    WHERE r.import_id = $1 AND r.status = 'pending'
      AND (i.mode <> $2
           OR NOT EXISTS (SELECT 1 FROM people p WHERE p.tenant_id = i.tenant_id AND p.email = r.email))
) named ON true
WHERE i.id = $1
ORDER BY lower(regexp_replace(named.name, '\s', '', 'g')), named.row_number, named.position
ON CONFLICT (tenant_id, name_key) DO NOTHING;

-- name: analyze_import_tables
ANALYZE import_rows, people, teams;

-- name: import_rows_applied
-- How many of the import's rows there are, and how many of them the workers
-- applied (not settled as unchanged when the file was recorded).
SELECT coalesce(total_rows, 0) AS total, coalesce(total_rows, 0) - unchanged_at_recording AS applied
FROM imports WHERE id = $1;

-- name: assign_team_managers
-- A team's manager is the first row of the file (lowest row number) whose
-- person is an active Manager with that team as primary team. In add-only
-- mode ($3) a team that already has a manager keeps them. Each change is
-- recorded in import_team_changes for an undo (the first "before" kept when
-- release_demoted_managers changed the team first).
WITH first_manager AS (
    SELECT DISTINCT ON (p.primary_team_id) p.primary_team_id AS team_id, p.id AS person_id
    FROM import_rows r
    JOIN people p ON p.id = r.person_id AND p.tenant_id = $2
    WHERE r.import_id = $1 AND r.status IN ('created', 'updated', 'unchanged')
      AND p.role = 'manager' AND p.status = 'active' AND p.primary_team_id IS NOT NULL
    ORDER BY p.primary_team_id, r.row_number
), assigned AS (
    UPDATE teams t SET manager_id = fm.person_id
    FROM first_manager fm, teams old
    WHERE t.tenant_id = $2 AND t.id = fm.team_id AND old.id = t.id
      AND t.manager_id IS DISTINCT FROM fm.person_id
      AND (NOT $3 OR t.manager_id IS NULL)
    RETURNING t.id, old.manager_id AS manager_before, t.manager_id AS manager_after
)
INSERT INTO import_team_changes (import_id, team_id, manager_before, manager_after)
SELECT $1, id, manager_before, manager_after FROM assigned
ON CONFLICT (import_id, team_id) DO UPDATE SET manager_after = excluded.manager_after;

-- name: release_demoted_managers
-- A team whose manager appears in this file no longer as its Manager (another
-- role or another primary team) and that no row names a new manager for loses
-- its manager rather than keeping someone who is not one any more. Driven
-- from the tenant's managed teams, each manager looked up by primary key and
-- checked against the file by the (import_id, email) index: a subquery per
-- team, which the planner cannot turn into a join. As a join, on statistics
-- that had not seen the tenant's people yet, it was planned as a nested loop
-- of the tenant's people over its teams (over a minute at 100,000 rows); and
-- joining from the import's rows made PostgreSQL scan the tenant's teams once
-- per row (40 s at 50,000 rows).
-- Each change is recorded in import_team_changes for an undo.
WITH released AS (
    UPDATE teams t SET manager_id = NULL
    FROM teams old
    WHERE old.id = t.id AND t.tenant_id = $2 AND t.manager_id IS NOT NULL
      AND (SELECT (p.role <> 'manager' OR p.primary_team_id IS DISTINCT FROM t.id)
                  AND EXISTS (SELECT 1 FROM import_rows r
                              WHERE r.import_id = $1 AND r.email = p.email
                                AND r.status IN ('created', 'updated', 'unchanged'))
           FROM people p
           WHERE p.id = t.manager_id AND p.tenant_id = $2)
    RETURNING t.id, old.manager_id AS manager_before
)
INSERT INTO import_team_changes (import_id, team_id, manager_before, manager_after)
SELECT $1, id, manager_before, NULL FROM released
ON CONFLICT (import_id, team_id) DO UPDATE SET manager_after = excluded.manager_after;

-- name: sweep_candidates
-- Active people of the tenant the file names nowhere (invalid and failed rows
-- included): not by their address, nor by their employee id, nor by their
-- address as a row's previous one (a renamed person holds their row's address
-- by now; one whose rename was rejected is still named by it). One probe of
-- each of import_rows' indexes per person; the id and previous-address ones
-- have no entries for a file without those columns. Admins are counted
-- apart: never swept.
SELECT count(*) FILTER (WHERE p.role <> 'admin')::int AS would_deactivate,
       count(*) FILTER (WHERE p.role = 'admin')::int AS admins_kept,
       (SELECT count(*) FROM people WHERE tenant_id = $2 AND status = 'active')::int AS active
FROM people p
WHERE p.tenant_id = $2 AND p.status = 'active'
  AND NOT EXISTS (SELECT 1 FROM import_rows r WHERE r.import_id = $1 AND r.email = p.email)
  AND (p.employee_id IS NULL
       OR NOT EXISTS (SELECT 1 FROM import_rows r WHERE r.import_id = $1 AND r.employee_id = p.employee_id))
  AND NOT EXISTS (SELECT 1 FROM import_rows r WHERE r.import_id = $1 AND r.previous_email = p.email);

-- name: deactivate_missing_people
-- Each person swept is recorded in import_changes, as update_people records
-- the people it updates, for an undo. Who is missing: as sweep_candidates.
WITH swept AS (
    UPDATE people p
    SET status = 'deactivated', deactivated_at = now(), deactivated_by_import = $1, updated_at = now()
    WHERE p.tenant_id = $2 AND p.status = 'active' AND p.role <> 'admin'
      AND NOT EXISTS (SELECT 1 FROM import_rows r WHERE r.import_id = $1 AND r.email = p.email)
      AND (p.employee_id IS NULL
           OR NOT EXISTS (SELECT 1 FROM import_rows r
                          WHERE r.import_id = $1 AND r.employee_id = p.employee_id))
      AND NOT EXISTS (SELECT 1 FROM import_rows r WHERE r.import_id = $1 AND r.previous_email = p.email)
    RETURNING p.id, p.deactivated_at
)
INSERT INTO import_changes (import_id, person_id, changes)
SELECT $1, id, jsonb_build_object('status', jsonb_build_array('active', 'deactivated'),
                                  'deactivated_at', jsonb_build_array(NULL, deactivated_at),
                                  'deactivated_by_import', jsonb_build_array(NULL, $1::bigint))
FROM swept;

-- name: block_import
UPDATE imports SET state = 'blocked', would_deactivate = $2, admins_kept = $3 WHERE id = $1;

-- name: finish_import
UPDATE imports
SET state = 'done', finished_at = now(), deactivated = $2, admins_kept = $3,
    would_deactivate = coalesce($4, would_deactivate)
WHERE id = $1;

-- name: fail_import
UPDATE imports SET state = 'failed', finished_at = now(), error = $2
WHERE id = $1 AND state IN ('queued', 'running', 'finalizing');

-- name: cancel_import
UPDATE imports SET state = 'cancelled', finished_at = now()
WHERE id = $1 AND state IN ('queued', 'running', 'finalizing', 'blocked')
RETURNING tenant_id;

-- name: approve_mass_deactivation
UPDATE imports SET state = 'finalizing', allow_mass_deactivation = true
WHERE id = $1 AND state = 'blocked'
RETURNING id;

-- name: reopen_moved_unchanged_rows
-- Before import $1 (of tenant $2) is finalized (its row locked): a row
-- settled as unchanged when the file was recorded (record_rows:
-- person_version set) whose person has been written since, or is gone, goes
-- back to pending, is
-- taken off counter shard 0 (where the recording counted it) and off
-- unchanged_at_recording, and the import goes back to running, so that the
-- workers apply the row after all, to the person as they are now: the
-- file's values are never skipped on a comparison with values that have
-- moved since (an admin's edit, another process, an undo). people.xmin
-- changes with every write of the row, and only with a write (a lock sets
-- xmax). A hash anti-join of the rows settled at recording with the
-- tenant's people (50,000 rows, nobody moved: 0.1 s). Returns how many rows
-- went back.
WITH reopened AS (
    UPDATE import_rows r
    SET status = 'pending', person_id = NULL, person_version = NULL, settled_at = NULL
    WHERE r.import_id = $1 AND r.person_version IS NOT NULL AND r.status = 'unchanged'
      AND NOT EXISTS (SELECT 1 FROM people p
                      WHERE p.id = r.person_id AND p.tenant_id = $2 AND p.xmin = r.person_version)
    RETURNING 1
), counted AS (
    UPDATE import_counters SET unchanged = unchanged - (SELECT count(*) FROM reopened), progressed_at = now()
    WHERE import_id = $1 AND shard = 0 AND EXISTS (SELECT 1 FROM reopened)
), resumed AS (
    UPDATE imports
    SET state = 'running', unchanged_at_recording = unchanged_at_recording - (SELECT count(*) FROM reopened)
    WHERE id = $1 AND state = 'finalizing' AND EXISTS (SELECT 1 FROM reopened)
)
SELECT count(*)::int FROM reopened;
