-- Applying a batch of import rows, idempotently (core.rows).
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

-- name: lock_import_rows
-- The import first, with a share lock: row batches run side by side, while
-- cancel (which updates the import) waits for the batches in flight and every
-- later batch sees it. Then, if it is running, its pending rows among $2,
-- locked: one row per pending row, or a single row with a NULL row_number.
WITH imp AS MATERIALIZED (
    SELECT tenant_id, mode, blank_cells, state FROM imports WHERE id = $1 FOR SHARE
)
SELECT imp.tenant_id, imp.mode, imp.blank_cells, imp.state, r.row_number, r.email, r.data
FROM imp
LEFT JOIN LATERAL (
    SELECT row_number, email, data FROM import_rows
    WHERE import_id = $1 AND row_number = ANY($2::int[]) AND status = 'pending' AND imp.state = 'running'
    ORDER BY row_number
    FOR UPDATE
) r ON true
ORDER BY r.row_number;

-- name: lock_people
-- The batch's people, locked one e-mail at a time in the order given ($2 is
-- sorted, so concurrent batches lock in one order and cannot deadlock). One
-- index probe per e-mail whatever the statistics say: written as a plain
-- "email = ANY($2)", on statistics taken before the tenant had people the
-- planner scanned all of the tenant's people and filtered them (8-25 ms a
-- batch and growing with the import, against 0.1 ms); the locking subquery
-- cannot be flattened into such a plan.
SELECT p.id, p.email, p.first_name, p.last_name, p.job_title, p.role, p.language, p.location,
       p.employee_id, p.primary_team_id, p.secondary_team_ids, p.status, p.last_import_id
FROM unnest($2::text[]) AS wanted(email)
CROSS JOIN LATERAL (
    SELECT * FROM people
    WHERE people.tenant_id = $1 AND people.email = wanted.email
    FOR UPDATE
) p
ORDER BY p.email;

-- name: find_teams
-- Team ids for the given names, in the order given (NULL where none exists yet).
-- One index probe per name (a subquery per name, which the planner cannot
-- turn into a scan of all the tenant's teams, as it did with a join on
-- statistics taken before the tenant had teams: see lock_people).
SELECT (SELECT t.id FROM teams t
        WHERE t.tenant_id = $1 AND t.name_key = lower(regexp_replace(wanted.name, '\s', '', 'g'))) AS id
FROM unnest($2::text[]) WITH ORDINALITY AS wanted(name, ord)
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
                    location, employee_id, primary_team_id, secondary_team_ids, last_import_id)
SELECT $1, u.email, u.first_name, u.last_name, u.job_title, u.role, u.language, u.location,
       u.employee_id, u.primary_team_id, u.secondary::bigint[], $2
FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
            $10::text[], $11::bigint[], $12::text[])
     AS u(email, first_name, last_name, job_title, role, language, location, employee_id, primary_team_id,
          secondary)
ORDER BY u.email
ON CONFLICT (tenant_id, email) DO NOTHING
RETURNING id, email;

-- name: update_people
-- Found by id (from lock_people, in this transaction); the tenant is checked
-- as a filter on the rows found, "IS NOT DISTINCT FROM" so that it can never
-- become a scan of all the tenant's people (see lock_people). In the same
-- statement, each person's changed fields go to import_changes as
-- [before, after] (what an undo restores, and checks is still there): "o" is
-- the person as this statement found them, before its own update. An
-- unchanged field's entry is NULL and stripped (its [before, after] array is
-- never NULL, whatever nulls it holds): one object built per person. A
-- person the import renamed has an entry already (the identities step wrote
-- its e-mail): this one is added to it.
WITH changed AS (
    UPDATE people p
    SET first_name = u.first_name, last_name = u.last_name, job_title = u.job_title, role = u.role,
        language = u.language, location = u.location, employee_id = u.employee_id,
        primary_team_id = u.primary_team_id,
        secondary_team_ids = u.secondary::bigint[], last_import_id = $2,
        status = 'active', deactivated_at = NULL, deactivated_by_import = NULL, updated_at = now()
    FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                $10::text[], $11::bigint[], $12::text[])
         AS u(id, first_name, last_name, job_title, role, language, location, employee_id, primary_team_id,
              secondary),
         people o
    WHERE p.id = u.id AND p.tenant_id IS NOT DISTINCT FROM $1 AND o.id = u.id
    RETURNING p.id, jsonb_strip_nulls(jsonb_build_object(
        'first_name', CASE WHEN o.first_name IS DISTINCT FROM u.first_name
                           THEN jsonb_build_array(o.first_name, u.first_name) END,
        'last_name', CASE WHEN o.last_name IS DISTINCT FROM u.last_name
                          THEN jsonb_build_array(o.last_name, u.last_name) END,
        'job_title', CASE WHEN o.job_title IS DISTINCT FROM u.job_title
                          THEN jsonb_build_array(o.job_title, u.job_title) END,
        'role', CASE WHEN o.role IS DISTINCT FROM u.role THEN jsonb_build_array(o.role, u.role) END,
        'language', CASE WHEN o.language IS DISTINCT FROM u.language
                         THEN jsonb_build_array(o.language, u.language) END,
        'location', CASE WHEN o.location IS DISTINCT FROM u.location
                         THEN jsonb_build_array(o.location, u.location) END,
        'employee_id', CASE WHEN o.employee_id IS DISTINCT FROM u.employee_id
                            THEN jsonb_build_array(o.employee_id, u.employee_id) END,
        'primary_team_id', CASE WHEN o.primary_team_id IS DISTINCT FROM u.primary_team_id
                                THEN jsonb_build_array(o.primary_team_id, u.primary_team_id) END,
        'secondary_team_ids', CASE WHEN o.secondary_team_ids IS DISTINCT FROM u.secondary::bigint[]
                                   THEN jsonb_build_array(o.secondary_team_ids, u.secondary::bigint[]) END,
        'status', CASE WHEN o.status <> 'active' THEN jsonb_build_array(o.status, 'active') END,
        'deactivated_at', CASE WHEN o.status <> 'active' THEN jsonb_build_array(o.deactivated_at, NULL) END,
        'deactivated_by_import', CASE WHEN o.status <> 'active'
                                      THEN jsonb_build_array(o.deactivated_by_import, NULL) END,
        'last_import_id', CASE WHEN o.last_import_id IS DISTINCT FROM $2
                               THEN jsonb_build_array(o.last_import_id, $2::bigint) END
    )) AS changes
)
INSERT INTO import_changes (import_id, person_id, changes)
SELECT $2, id, changes FROM changed
ON CONFLICT (import_id, person_id) DO UPDATE SET changes = import_changes.changes || excluded.changes;

-- name: deactivate_row_people
-- The people of rows that deactivate their person (SCIM's active: false;
-- core.columns.DEACTIVATE_FLAG), after update_people wrote them. Recorded in
-- import_changes as a sweep records its people ($4: false for the people this
-- import created, whose undo deactivates them anyway), merged with the entry
-- update_people wrote: the value before is the one the person had before the
-- import, whichever statement saw it first.
WITH swept AS (
    UPDATE people p
    SET status = 'deactivated', deactivated_at = now(), deactivated_by_import = $2, updated_at = now()
    FROM unnest($3::bigint[], $4::boolean[]) AS d(id, recorded)
    WHERE p.id = d.id AND p.tenant_id IS NOT DISTINCT FROM $1 AND p.status = 'active'
    RETURNING p.id, p.deactivated_at, d.recorded
)
INSERT INTO import_changes (import_id, person_id, changes)
SELECT $2, id, jsonb_build_object('status', jsonb_build_array('active', 'deactivated'),
                                  'deactivated_at', jsonb_build_array(NULL, deactivated_at),
                                  'deactivated_by_import', jsonb_build_array(NULL, $2::bigint))
FROM swept WHERE recorded
ON CONFLICT (import_id, person_id) DO UPDATE SET changes = import_changes.changes || jsonb_build_object(
    'status', jsonb_build_array(coalesce(import_changes.changes -> 'status' -> 0, excluded.changes -> 'status' -> 0),
                                excluded.changes -> 'status' -> 1),
    'deactivated_at', jsonb_build_array(
        coalesce(import_changes.changes -> 'deactivated_at' -> 0, excluded.changes -> 'deactivated_at' -> 0),
        excluded.changes -> 'deactivated_at' -> 1),
    'deactivated_by_import', jsonb_build_array(
        coalesce(import_changes.changes -> 'deactivated_by_import' -> 0,
                 excluded.changes -> 'deactivated_by_import' -> 0),
        excluded.changes -> 'deactivated_by_import' -> 1));

-- name: settle_rows
-- Settles a batch's (locked, pending) rows and adds their outcome counts
-- ($6..$10, in core.vocabulary.OUTCOMES order) to counter shard $5, in one
-- statement. Returns the import's rows still pending as this transaction sees
-- them once its own are settled: rows that concurrent batches settle are not
-- seen, so it is a hint (core.rows.Applied.may_be_last), not a count.
WITH settled AS (
    UPDATE import_rows r
    SET status = u.status, person_id = u.person_id, settled_at = now()
    FROM unnest($2::int[], $3::text[], $4::bigint[]) AS u(row_number, status, person_id)
    WHERE r.import_id = $1 AND r.row_number = u.row_number AND r.status = 'pending'
    RETURNING 1
), counted AS (
    UPDATE import_counters
    SET created = created + $6, updated = updated + $7, unchanged = unchanged + $8,
        skipped = skipped + $9, failed = failed + $10, progressed_at = now()
    WHERE import_id = $1 AND shard = $5
)
SELECT i.total_rows - i.invalid_rows - (SELECT count(*) FROM settled)
       - (SELECT coalesce(sum(created + updated + unchanged + skipped + failed), 0)
          FROM import_counters WHERE import_id = $1) AS remaining
FROM imports i WHERE i.id = $1;

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
