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
    data = NULL, person_id = NULL, person_version = NULL, settled_at = NULL,
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
    data = NULL, person_id = NULL, person_version = NULL, settled_at = NULL,
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
-- The rows written as unchanged (record_rows) are counted on
-- counter shard 0 and in unchanged_at_recording (core.imports re-checks
-- their people's versions before finalizing when there are any).
WITH t AS MATERIALIZED (
    SELECT count(*) AS total, count(*) FILTER (WHERE status = 'invalid') AS invalid,
           count(*) FILTER (WHERE status = 'unchanged') AS unchanged
    FROM import_rows WHERE import_id = $1
), counted AS (
    UPDATE import_counters SET unchanged = t.unchanged, progressed_at = now()
    FROM t WHERE import_id = $1 AND shard = 0 AND t.unchanged > 0
)
UPDATE imports
SET total_rows = t.total, invalid_rows = t.invalid, blank_rows = $2, identity_keys = $3,
    unchanged_at_recording = t.unchanged
FROM t
WHERE id = $1
RETURNING total_rows, unchanged_at_recording;

-- name: unsettle_renamed_rows
-- A row written as unchanged whose address is another row's previous one
-- (a rename of someone else to it, known only once the whole file is in)
-- is pending after all: whatever a rename touches is left to core.identity
-- and the workers. Run only when the file has a previous address.
UPDATE import_rows r
SET status = 'pending', person_id = NULL, person_version = NULL, settled_at = NULL
WHERE r.import_id = $1 AND r.status = 'unchanged'
  AND r.email IN (SELECT q.previous_email FROM import_rows q
                  WHERE q.import_id = $1 AND q.previous_email IS NOT NULL);

-- name: record_rows
-- One chunk of the file's rows written into import_rows (core.intake.settling),
-- given as arrays ($5..$12: row number, e-mail, data, raw, status, errors,
-- employee id, previous address; the documents as JSON text; in file order,
-- kept). In upsert and sync
-- ($4), a pending row that would change nothing of its stored person (tenant
-- $2; $3 true when the import keeps blank cells) is written settled as
-- unchanged, with the person and the version of them compared with
-- (people.xmin: core.imports re-checks it before finalizing); the others
-- travel to the workers. The rule is review_classify_rows'
-- (core/intake/sql/review.sql), which mirrors core.rows.desired_person and
-- is_unchanged: a column the file lacks (a key absent from data) keeps the
-- stored value, and so does a blank cell under $3 (otherwise it clears it: a
-- blank role is 'learner'); a deactivated person is reactivated (a change); a
-- team that does not exist yet changes the person; an Employee ID is blank or
-- the person's. tests/integration/test_vocabulary holds the three to the
-- same answers. Only people found at the row's own address, never a row
-- naming a previous address (a row whose address is a later row's previous
-- one is sent back afterwards: unsettle_renamed_rows): whatever a rename
-- touches is left to core.identity and the workers (matched by employee id,
-- the id must be the person's, so a row whose address belongs to someone
-- else is never taken for them). One index probe per row into people and
-- one into teams (the lateral subquery is not flattened: OFFSET 0), in the
-- rows' order; a secondary team, rarer, is one probe per name.
INSERT INTO import_rows (import_id, row_number, email, data, raw, status, errors, employee_id,
                         previous_email, person_id, person_version, settled_at)
SELECT $1, r.row_number, r.email, r.data, r.raw, CASE WHEN u.id IS NULL THEN r.status ELSE 'unchanged' END,
       r.errors, r.employee_id, r.previous_email, u.id, u.version, CASE WHEN u.id IS NOT NULL THEN now() END
FROM (SELECT a.row_number, a.email, a.data::jsonb AS data, a.raw::jsonb AS raw, a.status,
             a.errors::jsonb AS errors, a.employee_id, a.previous_email
      FROM unnest($5::int[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
                  $12::text[]) AS a(row_number, email, data, raw, status, errors, employee_id, previous_email)
      -- Not flattened: each document is parsed once, not once per reference.
      OFFSET 0) r
LEFT JOIN LATERAL (
    SELECT p.id, p.xmin AS version
    FROM people p
    LEFT JOIN teams pt ON pt.tenant_id = $2
                      AND pt.name_key = lower(regexp_replace(r.data ->> 'primary_team', '\s', '', 'g'))
    CROSS JOIN LATERAL (
        SELECT r.data ? 'primary_team' AND NOT ($3 AND r.data ->> 'primary_team' IS NULL) AS primary_given,
               coalesce(jsonb_array_length(r.data -> 'secondary_teams'), 0) = 0 AS no_secondary
    ) k
    WHERE $4 AND r.status = 'pending' AND r.previous_email IS NULL
      AND p.tenant_id = $2 AND p.email = r.email
      AND p.status = 'active'
      -- A SCIM row that deactivates its person (core.columns.DEACTIVATE_FLAG) is a change.
      AND (r.data -> 'active') IS DISTINCT FROM 'false'::jsonb
      AND (r.employee_id IS NULL OR r.employee_id = p.employee_id)
      AND (NOT r.data ? 'first_name' OR r.data ->> 'first_name' IS NOT DISTINCT FROM p.first_name)
      AND (NOT r.data ? 'last_name' OR r.data ->> 'last_name' IS NOT DISTINCT FROM p.last_name)
      AND (NOT r.data ? 'job_title' OR ($3 AND r.data ->> 'job_title' IS NULL)
           OR r.data ->> 'job_title' IS NOT DISTINCT FROM p.job_title)
      AND (NOT r.data ? 'role' OR ($3 AND r.data ->> 'role' IS NULL)
           OR coalesce(r.data ->> 'role', 'learner') IS NOT DISTINCT FROM p.role)
      AND (NOT r.data ? 'language' OR ($3 AND r.data ->> 'language' IS NULL)
           OR r.data ->> 'language' IS NOT DISTINCT FROM p.language)
      AND (NOT r.data ? 'location' OR ($3 AND r.data ->> 'location' IS NULL)
           OR r.data ->> 'location' IS NOT DISTINCT FROM p.location)
      AND (NOT k.primary_given
           OR (r.data ->> 'primary_team' IS NULL AND p.primary_team_id IS NULL)
           OR (pt.id IS NOT NULL AND pt.id = p.primary_team_id))
      AND (NOT r.data ? 'secondary_teams' OR ($3 AND k.no_secondary)
           -- None named, none held: the common case, decided without a subquery.
           OR (k.no_secondary AND coalesce(cardinality(p.secondary_team_ids), 0) = 0)
           OR (SELECT bool_and(s.id IS NOT NULL)
                      AND coalesce(array_agg(DISTINCT s.id ORDER BY s.id)
                                       FILTER (WHERE s.id IS DISTINCT FROM
                                               CASE WHEN k.primary_given THEN pt.id
                                                    ELSE p.primary_team_id END), '{}')
                          = coalesce((SELECT array_agg(x.id ORDER BY x.id)
                                      FROM unnest(p.secondary_team_ids) AS x(id)), '{}')
               FROM (SELECT (SELECT t.id FROM teams t
                             WHERE t.tenant_id = $2
                               AND t.name_key = lower(regexp_replace(n.name, '\s', '', 'g'))) AS id
                     FROM jsonb_array_elements_text(r.data -> 'secondary_teams') AS n(name)) s)
           IS NOT FALSE)
    OFFSET 0
) u ON true;
