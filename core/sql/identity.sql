-- Who each row of a file is, and e-mail changes as renames (core.identity).
-- The import (when it starts) and the review (before it) fill the scratch
-- table identity_rows with the file's valid rows and run the same resolving
-- statements over it, so the review predicts exactly what the import does.
-- Named statements: a block runs from its "-- name: NAME" line to the next.

-- name: identity_create_table
-- One row per valid row of the file: its keys, then what resolving found.
-- target_id: the stored person the row is (NULL: a new person), found by
-- "via" (employee_id, previous_email or email) and holding current_email now;
-- problem: why the row is rejected (NULL: none), naming other_id (a person)
-- or other_row (a row). Dropped with the transaction.
CREATE TEMP TABLE identity_rows (
    row_number     integer PRIMARY KEY,
    email          text NOT NULL,
    employee_id    text,
    previous_email text,
    target_id      bigint,
    via            text,
    current_email  text,
    other_id       bigint,
    other_row      integer,
    problem        text
) ON COMMIT DROP;

-- name: identity_rows_of_import
INSERT INTO identity_rows (row_number, email, employee_id, previous_email)
SELECT row_number, email, employee_id, previous_email
FROM import_rows WHERE import_id = $1 AND status = 'pending';

-- name: identity_analyze
-- Temporary tables are never auto-analyzed; the statements below join it.
ANALYZE identity_rows;

-- name: lock_import_identities
SELECT id, tenant_id, mode, match_by, state, identity_keys, identities_resolved_at, columns
FROM imports WHERE id = $1 FOR UPDATE;

-- name: import_identities_pending
-- Whether the import still has its rows' identities to resolve (read without a lock first: a
-- resumed import, whose batches hold the import's row in share mode, usually has not).
SELECT identity_keys AND identities_resolved_at IS NULL AND state = 'running' FROM imports WHERE id = $1;

-- name: identity_lock_people
-- Every person the file's rows could be (by address, employee id or previous
-- address), locked in id order before anything is decided: what the
-- statements below read stays true until the renames are written. One index
-- probe per key (a subquery each, as lock_people; by id as identity_match).
SELECT p.id
FROM (SELECT DISTINCT id FROM (
          SELECT (SELECT x.id FROM people x WHERE x.tenant_id = $1 AND x.email = r.email) AS id
          FROM identity_rows r
          UNION ALL
          SELECT (SELECT x.id FROM people x
                  WHERE x.employee_id = r.employee_id AND x.tenant_id IS NOT DISTINCT FROM $1)
          FROM identity_rows r WHERE r.employee_id IS NOT NULL
          UNION ALL
          SELECT (SELECT x.id FROM people x WHERE x.tenant_id = $1 AND x.email = r.previous_email)
          FROM identity_rows r WHERE r.previous_email IS NOT NULL) named
      WHERE id IS NOT NULL
      ORDER BY id) k
CROSS JOIN LATERAL (SELECT id FROM people WHERE id = k.id FOR UPDATE) p;

-- name: identity_match
-- Which stored person each row is, for tenant $1; $2 true: people are matched by employee id.
-- By employee id: the person with the row's id; else, when the row names a
-- previous address, the person there if they have no id yet (they get this
-- one), a problem if they have another; else the person at the row's address
-- if they have no id yet (the first import with ids adopts the people); else
-- a new person (whoever holds the address must give it up in this file).
-- By e-mail: the person at the previous address, else at the row's; a row's
-- Employee ID must then be that person's, or new to the tenant (it is given
-- to a person without one; an id never changes).
-- One index probe per key and row (scalar subqueries, which the planner
-- cannot turn into a join reading the tenant's people; as find_teams). By id, the
-- tenant is a filter on what the (employee_id, tenant_id) key finds ("IS NOT
-- DISTINCT FROM", which no index serves): as "tenant_id = $1" the planner,
-- on statistics that knew no ids, read every person of the tenant through the
-- (tenant_id, email) key and filtered them by id.
WITH found AS MATERIALIZED (
    SELECT r.row_number, r.employee_id,
           (SELECT id FROM people
            WHERE employee_id = r.employee_id AND tenant_id IS NOT DISTINCT FROM $1) AS id_person,
           (SELECT id FROM people WHERE tenant_id = $1 AND email = r.previous_email) AS previous_person,
           (SELECT id FROM people WHERE tenant_id = $1 AND email = r.email) AS email_person
    FROM identity_rows r
), keyed AS (
    SELECT f.*, (SELECT p.employee_id FROM people p WHERE p.id = f.previous_person) AS previous_id,
           (SELECT p.employee_id FROM people p WHERE p.id = f.email_person) AS email_id
    FROM found f
), decided AS (
    SELECT f.*,
           CASE WHEN $2 THEN
                    CASE WHEN f.id_person IS NOT NULL THEN f.id_person
                         WHEN f.previous_person IS NOT NULL AND f.previous_id IS NULL THEN f.previous_person
                         WHEN f.previous_person IS NOT NULL THEN NULL
                         WHEN f.email_person IS NOT NULL AND f.email_id IS NULL THEN f.email_person END
                ELSE coalesce(f.previous_person, f.email_person) END AS target_id,
           CASE WHEN $2 AND f.id_person IS NOT NULL THEN 'employee_id'
                WHEN f.previous_person IS NOT NULL THEN 'previous_email'
                ELSE 'email' END AS via
    FROM keyed f
), judged AS (
    SELECT d.row_number, d.target_id, d.via,
           CASE WHEN $2 AND d.id_person IS NULL AND d.previous_id IS NOT NULL THEN 'previous_has_other_id'
                WHEN NOT $2 AND d.employee_id IS NOT NULL
                     AND coalesce(CASE WHEN d.previous_person IS NOT NULL THEN d.previous_id ELSE d.email_id END,
                                  d.employee_id) <> d.employee_id THEN 'other_id'
                WHEN NOT $2 AND d.id_person IS NOT NULL AND d.id_person IS DISTINCT FROM d.target_id
                     THEN 'id_taken' END AS problem,
           CASE WHEN $2 THEN d.previous_person
                WHEN d.id_person IS DISTINCT FROM d.target_id THEN d.id_person END AS other_id
    FROM decided d
)
UPDATE identity_rows r
SET target_id = j.target_id, via = j.via, problem = j.problem,
    other_id = CASE WHEN j.problem IS NOT NULL THEN j.other_id END,
    current_email = (SELECT p.email FROM people p WHERE p.id = j.target_id)
FROM judged j
WHERE r.row_number = j.row_number;

-- name: identity_same_person
-- Rows that are one person: the first stands, the later ones are rejected naming it.
UPDATE identity_rows r
SET problem = 'same_person', other_row = d.first_row, other_id = r.target_id
FROM (SELECT row_number,
             first_value(row_number) OVER (PARTITION BY target_id ORDER BY row_number) AS first_row
      FROM identity_rows WHERE problem IS NULL AND target_id IS NOT NULL) d
WHERE r.row_number = d.row_number AND d.first_row <> d.row_number;

-- name: identity_taken_addresses
-- A row whose address someone else holds now can take it only if that
-- person gives it up: they are another row's person, moving to that row's
-- address, and their own move is not held up the same way (recursively: a
-- chain a → b → c fails whole when c is kept; a cycle, A ↔ B, never holds
-- itself up). The holder of a rejected row does not move. $2 true: add-only,
-- where nobody moves and only a new person claims an address. Recursion only
-- over the rows that want a held address (claims): none in a domain
-- migration, whose new addresses are free.
WITH RECURSIVE claims AS MATERIALIZED (
    SELECT h.row_number, h.target_id, h.holder_id
    FROM (SELECT r.row_number, r.target_id,
                 (SELECT id FROM people WHERE tenant_id = $1 AND email = r.email) AS holder_id
          FROM identity_rows r
          WHERE r.problem IS NULL AND (NOT $2 OR r.target_id IS NULL)) h
    WHERE h.holder_id IS NOT NULL AND h.holder_id IS DISTINCT FROM h.target_id
), blocked (row_number, target_id, holder_id) AS (
    SELECT c.row_number, c.target_id, c.holder_id FROM claims c
    WHERE $2 OR NOT EXISTS (SELECT 1 FROM identity_rows m WHERE m.problem IS NULL AND m.target_id = c.holder_id)
    UNION
    SELECT c.row_number, c.target_id, c.holder_id FROM claims c JOIN blocked b ON b.target_id = c.holder_id
)
UPDATE identity_rows r
SET problem = 'address_taken', other_id = b.holder_id
FROM blocked b
WHERE r.row_number = b.row_number;

-- name: identity_problems
-- The rejected rows with both people they name (core.identity.problem_message).
-- For a taken address, other_row is the row of its holder when the file has one (whose own
-- change could not be applied).
SELECT r.row_number, r.problem, r.via, r.email, r.employee_id, r.previous_email,
       CASE WHEN r.problem = 'address_taken'
            THEN (SELECT min(m.row_number) FROM identity_rows m WHERE m.target_id = r.other_id)
            ELSE r.other_row END AS other_row,
       t.email AS person_email, t.first_name AS person_first_name, t.last_name AS person_last_name,
       t.employee_id AS person_employee_id,
       o.email AS other_email, o.first_name AS other_first_name, o.last_name AS other_last_name,
       o.employee_id AS other_employee_id, o.status AS other_status
FROM identity_rows r
LEFT JOIN people t ON t.id = r.target_id
LEFT JOIN people o ON o.id = r.other_id
WHERE r.problem IS NOT NULL
ORDER BY r.row_number;

-- name: identity_reject_rows
-- Import $1's rows $2 are rejected with errors $4 on column $3 (values $5):
-- invalid, as a repeated e-mail is, and counted with the invalid rows.
WITH rejected AS (
    UPDATE import_rows r
    SET status = 'invalid', data = NULL,
        errors = coalesce(r.errors, '[]'::jsonb) || jsonb_build_array(jsonb_build_object(
            'column', u.header, 'value', u.value, 'message', u.message))
    FROM unnest($2::int[], $3::text[], $4::text[], $5::text[]) AS u(row_number, header, message, value)
    WHERE r.import_id = $1 AND r.row_number = u.row_number AND r.status = 'pending'
    RETURNING 1
)
UPDATE imports SET invalid_rows = invalid_rows + (SELECT count(*) FROM rejected) WHERE id = $1;

-- name: identity_settle_skips
-- Add-only: a row whose person is stored at another address (found by
-- employee id or previous address) is skipped here, as the batches skip the
-- rows whose person holds their address; nobody is renamed in add-only.
WITH skipped AS (
    UPDATE import_rows r SET status = 'skipped', person_id = i.target_id, settled_at = now()
    FROM identity_rows i
    WHERE r.import_id = $1 AND r.row_number = i.row_number AND r.status = 'pending'
      AND i.problem IS NULL AND i.target_id IS NOT NULL AND i.current_email <> i.email
    RETURNING 1
)
UPDATE import_counters SET skipped = skipped + (SELECT count(*) FROM skipped), progressed_at = now()
WHERE import_id = $1 AND shard = 0;

-- name: identity_vacate_addresses
-- Before the renames, the renamed people whose address another renamed person
-- takes (a swap, a chain) hold a placeholder for the rest of this
-- transaction: the unique (tenant_id, email) index is checked row by row, so
-- b → c must not find c taken, nor a → b find b. The placeholder is of the
-- reserved .invalid domain, which no valid address has, and no other
-- transaction ever sees it.
UPDATE people p SET email = 'moving-' || p.id || '@renaming.invalid'
FROM identity_rows m
WHERE p.id = m.target_id AND p.tenant_id IS NOT DISTINCT FROM $1
  AND m.problem IS NULL AND m.current_email <> m.email
  AND EXISTS (SELECT 1 FROM identity_rows w
              WHERE w.email = m.current_email AND w.problem IS NULL AND w.target_id IS NOT NULL);

-- name: identity_rename_people
-- The renames of import $2 (tenant $1), unless add-only ($3): each person
-- takes their row's address; import_changes records the address before and
-- after (and last_import_id), which undo gives back and update_people adds
-- to; last_import_id is the import's already, which is how the row's batch
-- knows its person was renamed (its outcome is then "updated"; no other path
-- writes the import's id on a person before their row); an invitation already sent keeps the address it went to (sent_to). Last, the
-- import records its counts and that its identities are resolved (when the
-- work was done: clock_timestamp, not the transaction's start).
WITH moved AS (
    UPDATE people p SET email = m.email, last_import_id = $2, updated_at = now()
    FROM identity_rows m, people o
    WHERE NOT $3 AND p.id = m.target_id AND o.id = m.target_id AND p.tenant_id IS NOT DISTINCT FROM $1
      AND m.problem IS NULL AND m.current_email <> m.email
    RETURNING p.id, m.current_email AS email_before, m.email AS email_after,
              o.last_import_id AS import_before
), recorded AS (
    INSERT INTO import_changes (import_id, person_id, changes)
    SELECT $2, id,
           jsonb_build_object('email', jsonb_build_array(email_before, email_after))
           || CASE WHEN import_before IS DISTINCT FROM $2
                   THEN jsonb_build_object('last_import_id', jsonb_build_array(import_before, $2::bigint))
                   ELSE '{}'::jsonb END
    FROM moved
), invited AS (
    UPDATE invites i SET sent_to = coalesce(i.sent_to, moved.email_before)
    FROM moved
    WHERE i.person_id = moved.id AND i.status = 'sent'
    RETURNING 1
)
UPDATE imports
SET email_changed = (SELECT count(*) FROM moved), email_changed_invited = (SELECT count(*) FROM invited),
    identities_resolved_at = clock_timestamp()
WHERE id = $2;
