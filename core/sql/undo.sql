-- Undoing an import, in set-based batches (core.undo). The "page"
-- statements read without locking, so the preview (read-only) and the undo's
-- batches decide with the same statements; a batch first locks its page's
-- people with the matching "lock" statement.
-- Named statements: a block runs from its "-- name: NAME" line to the next.

-- name: lock_undo
-- The undo, its progress and the import it undoes; one batch at a time.
SELECT i.id, i.tenant_id, i.state, i.undoes, i.created_at, u.phase, u.after_key, u.reported,
       x.finished_at AS undone_finished_at
FROM imports i
JOIN undos u ON u.import_id = i.id
JOIN imports x ON x.id = i.undoes
WHERE i.id = $1
FOR UPDATE OF i, u;

-- name: undone_import
SELECT id, tenant_id, mode, state, undoes, finished_at FROM imports WHERE id = $1;

-- name: undo_created_page
-- The people import $1 created, after row $2, $3 at most, and what an undo
-- does to each: deactivate them, unless they were deactivated since or
-- another import has written them since. Their live invite, if any (at most
-- one: invites_one_per_person).
SELECT r.row_number, p.id AS person_id, p.email, p.last_import_id,
       CASE WHEN p.status <> 'active' THEN 'already_deactivated'
            WHEN p.last_import_id IS DISTINCT FROM $1 THEN 'changed_since'
            ELSE 'deactivate' END AS action,
       inv.id AS invite_id, inv.status AS invite_status, inv.sent_at AS invite_sent_at
FROM import_rows r
JOIN people p ON p.id = r.person_id
LEFT JOIN invites inv ON inv.person_id = p.id AND inv.status <> 'cancelled'
WHERE r.import_id = $1 AND r.status = 'created' AND r.row_number > $2
ORDER BY r.row_number
LIMIT $3;

-- name: lock_undo_created_people
SELECT p.id
FROM import_rows r
JOIN people p ON p.id = r.person_id
WHERE r.import_id = $1 AND r.status = 'created' AND r.row_number > $2
ORDER BY r.row_number
LIMIT $3
FOR UPDATE OF p;

-- name: undo_changed_page
-- The people import $1 updated or swept, after person $2, $3 at most: the
-- values it replaced that are still the ones it wrote (restore: column →
-- value before), and the others (kept: column → [before, written, now]).
-- Times compare as times, whatever the session's time zone wrote them as.
-- A value already back to what it was before (an earlier undo) is neither.
-- The address is the emails phase's (undo_email_moves), left out here; the
-- row is found by the address the import wrote, which the person may no
-- longer hold.
SELECT c.person_id, p.email, k.restore, k.kept, c.changes -> 'status' ->> 1 AS status_written,
       (SELECT r.row_number FROM import_rows r
        WHERE r.import_id = $1 AND r.email = coalesce(c.changes -> 'email' ->> 1, p.email)) AS row_number
FROM import_changes c
JOIN people p ON p.id = c.person_id
CROSS JOIN LATERAL (
    SELECT coalesce(jsonb_object_agg(e.key, e.value -> 0) FILTER (WHERE e.written), '{}') AS restore,
           coalesce(jsonb_object_agg(e.key, jsonb_build_array(e.value -> 0, e.value -> 1, e.now))
                        FILTER (WHERE NOT e.written AND NOT e.before), '{}') AS kept
    FROM (SELECT each.key, each.value, cur.doc -> each.key AS now,
                 CASE WHEN each.key = 'deactivated_at'
                      THEN (cur.doc ->> each.key)::timestamptz
                           IS NOT DISTINCT FROM (each.value ->> 1)::timestamptz
                      ELSE coalesce(cur.doc -> each.key = each.value -> 1, false) END AS written,
                 CASE WHEN each.key = 'deactivated_at'
                      THEN (cur.doc ->> each.key)::timestamptz
                           IS NOT DISTINCT FROM (each.value ->> 0)::timestamptz
                      ELSE coalesce(cur.doc -> each.key = each.value -> 0, false) END AS before
          FROM (SELECT to_jsonb(p) AS doc) cur, jsonb_each(c.changes - 'email') each) e
) k
WHERE c.import_id = $1 AND c.person_id > $2
ORDER BY c.person_id
LIMIT $3;

-- name: undo_email_moves
-- The addresses import $1 (tenant $2) changed, each with what an undo does:
-- 'restore' when the person still holds the address the import gave them and
-- can take back the one it took: nobody holds it, or its holder gives their
-- own back in this undo and is not held up the same way (recursively, as
-- identity_taken_addresses: a swap or a chain comes back whole, or waits
-- for no one); 'taken' when someone who keeps it holds it now (a person the
-- import created holds it still, deactivated); 'changed_since' when the
-- person holds another address than the import's now; 'already' when they
-- hold the old one again. Read without locks: the preview and the batch decide alike.
WITH RECURSIVE moves AS MATERIALIZED (
    SELECT c.person_id, p.email AS now, c.changes -> 'email' ->> 0 AS before,
           c.changes -> 'email' ->> 1 AS written,
           (SELECT r.row_number FROM import_rows r
            WHERE r.import_id = $1 AND r.email = c.changes -> 'email' ->> 1) AS row_number
    FROM import_changes c
    JOIN people p ON p.id = c.person_id
    WHERE c.import_id = $1 AND c.changes ? 'email'
), claims AS MATERIALIZED (
    SELECT m.person_id, h.id AS holder_id
    FROM moves m
    CROSS JOIN LATERAL (SELECT id FROM people WHERE tenant_id = $2 AND email = m.before) h
    WHERE m.now = m.written AND h.id <> m.person_id
), blocked (person_id, holder_id) AS (
    SELECT c.person_id, c.holder_id FROM claims c
    WHERE NOT EXISTS (SELECT 1 FROM moves m WHERE m.person_id = c.holder_id AND m.now = m.written)
    UNION
    SELECT c.person_id, c.holder_id FROM claims c JOIN blocked b ON b.person_id = c.holder_id
)
SELECT m.person_id, m.row_number, m.before, m.written, m.now,
       CASE WHEN m.now = m.before THEN 'already'
            WHEN m.now <> m.written THEN 'changed_since'
            WHEN b.person_id IS NOT NULL THEN 'taken'
            ELSE 'restore' END AS action,
       h.email AS holder_email, h.first_name AS holder_first_name, h.last_name AS holder_last_name
FROM moves m
LEFT JOIN blocked b ON b.person_id = m.person_id
LEFT JOIN people h ON h.id = b.holder_id
ORDER BY m.person_id;

-- name: lock_undo_email_people
-- Everyone whose address import $1 changed, in id order, before undo_email_moves decides.
SELECT p.id
FROM import_changes c
JOIN people p ON p.id = c.person_id
WHERE c.import_id = $1 AND c.changes ? 'email'
ORDER BY p.id
FOR UPDATE OF p;

-- name: undo_vacate_emails
-- Before the addresses go back, those of the people $1 that another of them
-- takes back ($2: the addresses given back) hold a placeholder for the rest
-- of the transaction (see identity_vacate_addresses).
UPDATE people p SET email = 'moving-' || p.id || '@renaming.invalid'
FROM unnest($1::bigint[]) AS u(id)
WHERE p.id = u.id AND p.tenant_id IS NOT DISTINCT FROM $3 AND p.email = ANY($2::text[]);

-- name: restore_undone_emails
UPDATE people p SET email = u.email, updated_at = now()
FROM unnest($1::bigint[], $2::text[]) AS u(id, email)
WHERE p.id = u.id AND p.tenant_id IS NOT DISTINCT FROM $3;

-- name: lock_undo_changed_people
SELECT p.id
FROM import_changes c
JOIN people p ON p.id = c.person_id
WHERE c.import_id = $1 AND c.person_id > $2
ORDER BY c.person_id
LIMIT $3
FOR UPDATE OF p;

-- name: undo_purged_page
-- The people import $1 updated, after row $2: past the retention window
-- their replaced values are no longer kept (core.undo), so they are reported.
SELECT r.row_number, r.email FROM import_rows r
WHERE r.import_id = $1 AND r.status = 'updated' AND r.row_number > $2
ORDER BY r.row_number
LIMIT $3;

-- name: count_still_swept
SELECT count(*)::int FROM people WHERE tenant_id = $2 AND deactivated_by_import = $1;

-- name: reactivate_still_swept
-- Past the retention window: the people import $1 swept and still
-- deactivated by it (untouched since) are reactivated.
UPDATE people SET status = 'active', deactivated_at = NULL, deactivated_by_import = NULL, updated_at = now()
WHERE tenant_id = $2 AND deactivated_by_import = $1 AND status = 'deactivated';

-- name: deactivate_undone_people
UPDATE people p
SET status = 'deactivated', deactivated_at = now(), deactivated_by_import = $2, updated_at = now()
FROM unnest($1::bigint[]) AS u(id)
WHERE p.id = u.id AND p.tenant_id IS NOT DISTINCT FROM $3 AND p.status = 'active';

-- name: cancel_undone_invites
UPDATE invites SET status = 'cancelled', error = 'the import that created this person was undone'
WHERE id = ANY($1::bigint[]) AND status IN ('pending', 'scheduled', 'failed');

-- name: restore_undone_people
-- $2: each person's column → value to put back (from undo_changed_page's restore).
UPDATE people p
SET first_name = CASE WHEN u.r ? 'first_name' THEN u.r ->> 'first_name' ELSE p.first_name END,
    last_name = CASE WHEN u.r ? 'last_name' THEN u.r ->> 'last_name' ELSE p.last_name END,
    job_title = CASE WHEN u.r ? 'job_title' THEN u.r ->> 'job_title' ELSE p.job_title END,
    role = CASE WHEN u.r ? 'role' THEN u.r ->> 'role' ELSE p.role END,
    language = CASE WHEN u.r ? 'language' THEN u.r ->> 'language' ELSE p.language END,
    location = CASE WHEN u.r ? 'location' THEN u.r ->> 'location' ELSE p.location END,
    employee_id = CASE WHEN u.r ? 'employee_id' THEN u.r ->> 'employee_id' ELSE p.employee_id END,
    primary_team_id = CASE WHEN u.r ? 'primary_team_id' THEN (u.r ->> 'primary_team_id')::bigint
                           ELSE p.primary_team_id END,
    secondary_team_ids = CASE WHEN u.r ? 'secondary_team_ids'
                              THEN ARRAY(SELECT t.id::bigint
                                         FROM jsonb_array_elements_text(u.r -> 'secondary_team_ids')
                                              WITH ORDINALITY AS t(id, ord)
                                         ORDER BY t.ord)
                              ELSE p.secondary_team_ids END,
    status = CASE WHEN u.r ? 'status' THEN u.r ->> 'status' ELSE p.status END,
    deactivated_at = CASE WHEN u.r ? 'deactivated_at' THEN (u.r ->> 'deactivated_at')::timestamptz
                          ELSE p.deactivated_at END,
    deactivated_by_import = CASE WHEN u.r ? 'deactivated_by_import'
                                 THEN (u.r ->> 'deactivated_by_import')::bigint
                                 ELSE p.deactivated_by_import END,
    last_import_id = CASE WHEN u.r ? 'last_import_id' THEN (u.r ->> 'last_import_id')::bigint
                          ELSE p.last_import_id END,
    updated_at = now()
FROM unnest($1::bigint[], $2::jsonb[]) AS u(id, r)
WHERE p.id = u.id AND p.tenant_id IS NOT DISTINCT FROM $3;

-- name: team_names
SELECT id, name FROM teams WHERE id = ANY($1::bigint[]);

-- name: restore_team_managers
-- The teams whose manager import $1 changed, and that still have the manager
-- it left them with, get the manager they had before if that person is (again)
-- an active Manager of the team; else keep the import's if that one still is;
-- else none: the import's rule for who manages a team, after the people's undo.
WITH qualified AS (
    SELECT c.team_id,
           (SELECT m.id FROM people m
            WHERE m.id = c.manager_before AND m.tenant_id = $2 AND m.status = 'active'
              AND m.role = 'manager' AND m.primary_team_id = c.team_id) AS before_ok,
           (SELECT m.id FROM people m
            WHERE m.id = c.manager_after AND m.tenant_id = $2 AND m.status = 'active'
              AND m.role = 'manager' AND m.primary_team_id = c.team_id) AS after_ok,
           c.manager_after
    FROM import_team_changes c
    WHERE c.import_id = $1
)
UPDATE teams t SET manager_id = coalesce(q.before_ok, q.after_ok)
FROM qualified q
WHERE t.id = q.team_id AND t.tenant_id = $2
  AND t.manager_id IS NOT DISTINCT FROM q.manager_after
  AND t.manager_id IS DISTINCT FROM coalesce(q.before_ok, q.after_ok);

-- name: undo_empty_teams
-- Teams created while import $1 ran that no active person belongs to: left in
-- place (teams are never deleted), and reported.
WITH used AS (
    SELECT DISTINCT team_id
    FROM people p, unnest(array_append(p.secondary_team_ids, p.primary_team_id)) AS team_id
    WHERE p.tenant_id = $2 AND p.status = 'active'
)
SELECT t.id, t.name
FROM teams t
JOIN imports x ON x.id = $1
WHERE t.tenant_id = $2 AND t.created_at >= x.started_at AND t.created_at <= x.finished_at
  AND NOT EXISTS (SELECT 1 FROM used WHERE used.team_id = t.id)
ORDER BY t.name;

-- name: teams_created_by_import
SELECT t.id, t.name
FROM teams t
JOIN imports x ON x.id = $1
WHERE t.tenant_id = $2 AND t.created_at >= x.started_at AND t.created_at <= x.finished_at
ORDER BY t.name;

-- name: insert_undo_report
-- What the undo could not restore, as failed rows of the undo itself: its
-- errors file (producer.reports.write_failed_rows) lists them.
-- $4 and $5 are JSON texts: a jsonb[] parameter cannot carry JSON arrays
-- (the driver reads nested lists as an array's dimensions).
INSERT INTO import_rows (import_id, row_number, email, raw, status, errors)
SELECT $1, u.line, u.email, u.raw::jsonb, 'failed', u.errors::jsonb
FROM unnest($2::int[], $3::text[], $4::text[], $5::text[]) AS u(line, email, raw, errors);

-- name: advance_undo
-- A batch's progress and counts ($4.. in core.vocabulary.UNDO_COUNTS
-- order, then the report lines), with the undo's progress time
-- (housekeeping's stall check reads it from its counter shard).
WITH progressed AS (
    UPDATE import_counters SET progressed_at = now() WHERE import_id = $1 AND shard = 0
)
UPDATE undos
SET phase = $2, after_key = $3, restored = restored + $4, emails_restored = emails_restored + $5,
    deactivated = deactivated + $6, reactivated = reactivated + $7, kept = kept + $8,
    invites_cancelled = invites_cancelled + $9, invites_sent = invites_sent + $10,
    teams_left = teams_left + $11, reported = reported + $12
WHERE import_id = $1;

-- name: undo_counts
-- not_restored: the lines of its report (its errors file).
SELECT phase, restored, emails_restored, deactivated, reactivated, kept, invites_cancelled, invites_sent,
       teams_left, reported AS not_restored
FROM undos WHERE import_id = $1;

-- name: purge_import_changes
-- The before-values of imports that ended more than $1 days ago (UNDO_RETENTION_DAYS).
WITH old AS (
    SELECT id FROM imports
    WHERE finished_at < now() - make_interval(days => $1) AND mode <> 'undo'
), changes AS (
    DELETE FROM import_changes c USING old WHERE c.import_id = old.id RETURNING 1
), teams AS (
    DELETE FROM import_team_changes c USING old WHERE c.import_id = old.id
)
SELECT count(*)::int FROM changes;
