-- Every statement the application runs, named for what it does.
-- worker/db.py parses this file into a dict: a block starts at "-- name: NAME"
-- and runs to the next one. Statements are scoped by tenant wherever a tenant
-- is in play.

-- name: ensure_tenant
-- Tenants are created on their first import, named after their id.
INSERT INTO tenants (id, name) VALUES ($1, $1)
ON CONFLICT (id) DO NOTHING;

-- name: get_tenant
SELECT id, name, timezone, default_language FROM tenants WHERE id = $1;

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

-- name: reject_duplicate_emails
-- Later rows repeating an e-mail (already lower-cased) are invalid; the first
-- occurrence stands and is named in the message.
WITH ranked AS (
    SELECT row_number, email,
           first_value(row_number) OVER (PARTITION BY email ORDER BY row_number) AS first_row
    FROM import_rows
    WHERE import_id = $1 AND email IS NOT NULL
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
WHERE r.import_id = $1 AND r.row_number = ranked.row_number
  AND ranked.first_row <> ranked.row_number;

-- name: set_import_totals
UPDATE imports
SET total_rows = t.total, invalid_rows = t.invalid, blank_rows = $2
FROM (SELECT count(*) AS total, count(*) FILTER (WHERE status = 'invalid') AS invalid
      FROM import_rows WHERE import_id = $1) t
WHERE id = $1
RETURNING total_rows;

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

-- name: get_import
SELECT id, tenant_id, mode, invites, send_at, allow_mass_deactivation, state, filename,
       columns, total_rows, invalid_rows, blank_rows, would_deactivate, deactivated,
       admins_kept, error, created_at, started_at, finished_at
FROM imports WHERE id = $1;

-- name: import_tenant
SELECT tenant_id FROM imports WHERE id = $1;

-- name: lock_import
SELECT id, tenant_id, mode, state, allow_mass_deactivation, invites, send_at
FROM imports WHERE id = $1 FOR UPDATE;

-- name: import_row_counts
SELECT coalesce(sum(created), 0)::int AS created, coalesce(sum(updated), 0)::int AS updated,
       coalesce(sum(unchanged), 0)::int AS unchanged, coalesce(sum(skipped), 0)::int AS skipped,
       coalesce(sum(failed), 0)::int AS failed
FROM import_counters WHERE import_id = $1;

-- name: pending_rows
-- One page of the rows not yet settled, after row $2. The dispatcher pages
-- with short statements rather than one long cursor: a transaction held open
-- while a million messages are sent would stop vacuum from reclaiming the
-- row versions the workers churn meanwhile (the counters most of all).
SELECT row_number FROM import_rows
WHERE import_id = $1 AND status = 'pending' AND row_number > $2
ORDER BY row_number
LIMIT $3;

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

-- name: analyze_import_tables
ANALYZE import_rows, people, teams;

-- name: assign_team_managers
-- A team's manager is the first row of the file (lowest row number) whose
-- person is an active Manager with that team as primary team. In add-only
-- mode ($3) a team that already has a manager keeps them.
WITH first_manager AS (
    SELECT DISTINCT ON (p.primary_team_id) p.primary_team_id AS team_id, p.id AS person_id
    FROM import_rows r
    JOIN people p ON p.id = r.person_id AND p.tenant_id = $2
    WHERE r.import_id = $1 AND r.status IN ('created', 'updated', 'unchanged')
      AND p.role = 'manager' AND p.status = 'active' AND p.primary_team_id IS NOT NULL
    ORDER BY p.primary_team_id, r.row_number
)
UPDATE teams t SET manager_id = fm.person_id
FROM first_manager fm
WHERE t.tenant_id = $2 AND t.id = fm.team_id
  AND t.manager_id IS DISTINCT FROM fm.person_id
  AND (NOT $3 OR t.manager_id IS NULL);

-- name: release_demoted_managers
-- A team whose manager appears in this file no longer as its Manager (another
-- role or another primary team) and that no row names a new manager for loses
-- its manager rather than keeping someone who is not one any more. Driven
-- from the tenant's managed teams (few), each checked against the file by
-- the (import_id, email) index: joining from the import's rows instead made
-- PostgreSQL scan the tenant's teams once per row (40 s at 50,000 rows).
UPDATE teams t SET manager_id = NULL
FROM people p
WHERE t.tenant_id = $2 AND t.manager_id IS NOT NULL
  AND p.tenant_id = $2 AND p.id = t.manager_id
  AND (p.role <> 'manager' OR p.primary_team_id IS DISTINCT FROM t.id)
  AND EXISTS (SELECT 1 FROM import_rows r
              WHERE r.import_id = $1 AND r.email = p.email
                AND r.status IN ('created', 'updated', 'unchanged'));

-- name: sweep_candidates
-- Active people of the tenant whose e-mail appears nowhere in the file
-- (invalid and failed rows included). Admins are counted apart: never swept.
SELECT count(*) FILTER (WHERE p.role <> 'admin')::int AS would_deactivate,
       count(*) FILTER (WHERE p.role = 'admin')::int AS admins_kept,
       (SELECT count(*) FROM people WHERE tenant_id = $2 AND status = 'active')::int AS active
FROM people p
WHERE p.tenant_id = $2 AND p.status = 'active'
  AND NOT EXISTS (SELECT 1 FROM import_rows r WHERE r.import_id = $1 AND r.email = p.email);

-- name: deactivate_missing_people
UPDATE people p
SET status = 'deactivated', deactivated_at = now(), deactivated_by_import = $1, updated_at = now()
WHERE p.tenant_id = $2 AND p.status = 'active' AND p.role <> 'admin'
  AND NOT EXISTS (SELECT 1 FROM import_rows r WHERE r.import_id = $1 AND r.email = p.email);

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

-- name: list_imports
SELECT id FROM imports WHERE ($1::text IS NULL OR tenant_id = $1) ORDER BY id DESC LIMIT $2;

-- name: failed_rows
SELECT row_number, status, raw, errors FROM import_rows
WHERE import_id = $1 AND status IN ('invalid', 'failed') ORDER BY row_number;

-- name: export_people
SELECT p.email, p.first_name, p.last_name, p.job_title, p.role, p.language, p.location,
       pt.name AS primary_team,
       (SELECT string_agg(st.name, '; ' ORDER BY ord)
        FROM unnest(p.secondary_team_ids) WITH ORDINALITY AS s(team_id, ord)
        JOIN teams st ON st.id = s.team_id AND st.tenant_id = p.tenant_id) AS secondary_teams,
       p.status, m.email AS manager_email,
       (SELECT i.status FROM invites i WHERE i.person_id = p.id AND i.status <> 'cancelled') AS invite_status
FROM people p
LEFT JOIN teams pt ON pt.id = p.primary_team_id AND pt.tenant_id = p.tenant_id
-- A person's manager: their primary team's manager, unless that is themself.
LEFT JOIN people m ON m.id = nullif(pt.manager_id, p.id) AND m.tenant_id = p.tenant_id
WHERE p.tenant_id = $1
ORDER BY p.email;

-- name: import_invite_counts
SELECT count(*) FILTER (WHERE status = 'pending')::int AS pending,
       count(*) FILTER (WHERE status = 'scheduled')::int AS scheduled,
       count(*) FILTER (WHERE status = 'sent')::int AS sent,
       count(*) FILTER (WHERE status = 'failed')::int AS failed
FROM invites WHERE import_id = $1;

-- name: active_import_of_tenant
SELECT id FROM imports
WHERE tenant_id = $1 AND state IN ('running', 'finalizing', 'blocked');

-- name: create_import_teams
-- Creates, before any row runs, the teams an import names, spelled as first
-- written in the file (rows run concurrently, so leaving it to them would let
-- a later row's spelling win). Existing teams keep their spelling. In
-- add-only mode rows of existing people are skipped, so their teams are not made.
INSERT INTO teams (tenant_id, name)
SELECT DISTINCT ON (lower(regexp_replace(named.name, '\s', '', 'g'))) i.tenant_id, named.name
FROM imports i
JOIN LATERAL (
    SELECT r.row_number, 0::bigint AS position, r.data ->> 'primary_team' AS name
    FROM import_rows r
    WHERE r.import_id = i.id AND r.status = 'pending' AND r.data ->> 'primary_team' IS NOT NULL
      AND (i.mode <> 'add-only'
           OR NOT EXISTS (SELECT 1 FROM people p WHERE p.tenant_id = i.tenant_id AND p.email = r.email))
    UNION ALL
    SELECT r.row_number, s.position, s.name
    FROM import_rows r
    CROSS JOIN LATERAL jsonb_array_elements_text(coalesce(r.data -> 'secondary_teams', '[]'))
         WITH ORDINALITY AS s(name, position)
    WHERE r.import_id = i.id AND r.status = 'pending'
      AND (i.mode <> 'add-only'
           OR NOT EXISTS (SELECT 1 FROM people p WHERE p.tenant_id = i.tenant_id AND p.email = r.email))
) named ON true
WHERE i.id = $1
ORDER BY lower(regexp_replace(named.name, '\s', '', 'g')), named.row_number, named.position
ON CONFLICT (tenant_id, name_key) DO NOTHING;

-- name: review_create_rows_table
-- The review's scratch table: one row per data row of the file under review.
-- The review's transaction is always rolled back, which drops it (ON COMMIT
-- DROP covers a caller that commits instead). valid: passed validation and is
-- no repeated e-mail; domain: a valid row's e-mail domain; action: what the
-- import would do with the row.
CREATE TEMP TABLE review_rows (
    row_number          integer NOT NULL,
    email               text,
    valid               boolean NOT NULL,
    raw_email           text,
    raw_primary_team    text,
    raw_secondary_teams text,
    raw_role            text,
    domain              text,
    first_name          text,
    last_name           text,
    job_title           text,
    role                text,
    language            text,
    location            text,
    primary_team        text,
    secondary_teams     text[],
    duplicate_of        integer,
    action              text
) ON COMMIT DROP;

-- name: review_read_only
-- After its scratch table exists, the review's transaction writes nothing
-- else: PostgreSQL itself refuses any write to a permanent table from here on.
SET TRANSACTION READ ONLY;

-- name: review_analyze_rows
-- Temporary tables are never auto-analyzed; the review's joins need estimates.
ANALYZE review_rows;

-- name: review_mark_duplicate_emails
-- Same rule as reject_duplicate_emails: a later row repeating an e-mail (valid
-- or not) is invalid and names the first row with it.
WITH ranked AS (
    SELECT row_number,
           first_value(row_number) OVER (PARTITION BY email ORDER BY row_number) AS first_row
    FROM review_rows
    WHERE email IS NOT NULL
)
UPDATE review_rows r
SET valid = false, duplicate_of = ranked.first_row
FROM ranked
WHERE r.row_number = ranked.row_number AND ranked.first_row <> ranked.row_number;

-- name: review_duplicate_emails
-- The rows review_mark_duplicate_emails rejected, in file order.
SELECT row_number, email, raw_email, duplicate_of
FROM review_rows WHERE duplicate_of IS NOT NULL ORDER BY row_number;

-- name: review_classify_rows
-- What the import would do with each row of tenant $1 in mode $2; $3 lists the
-- fields the file has a column for. Mirrors worker.rows.desired_person and
-- is_unchanged: an absent column keeps the stored value, a deactivated person
-- is reactivated (an update), and a team that does not exist yet will be
-- created, so naming it (primary or secondary) changes the person.
UPDATE review_rows r
SET action = c.action
FROM (
    SELECT r.row_number,
           CASE
               WHEN NOT r.valid THEN 'invalid'
               WHEN p.id IS NULL THEN 'create'
               WHEN $2 = 'add-only' THEN 'skip'
               WHEN p.status = 'active'
                    AND (NOT ('first_name' = ANY($3)) OR r.first_name IS NOT DISTINCT FROM p.first_name)
                    AND (NOT ('last_name' = ANY($3)) OR r.last_name IS NOT DISTINCT FROM p.last_name)
                    AND (NOT ('job_title' = ANY($3)) OR r.job_title IS NOT DISTINCT FROM p.job_title)
                    AND (NOT ('role' = ANY($3)) OR r.role IS NOT DISTINCT FROM p.role)
                    AND (NOT ('language' = ANY($3)) OR r.language IS NOT DISTINCT FROM p.language)
                    AND (NOT ('location' = ANY($3)) OR r.location IS NOT DISTINCT FROM p.location)
                    AND (NOT ('primary_team' = ANY($3))
                         OR (r.primary_team IS NULL AND p.primary_team_id IS NULL)
                         OR (pt.id IS NOT NULL AND pt.id IS NOT DISTINCT FROM p.primary_team_id))
                    AND (NOT ('secondary_teams' = ANY($3))
                         OR (NOT EXISTS (
                                 SELECT 1 FROM unnest(r.secondary_teams) AS n(name)
                                 WHERE NOT EXISTS (
                                     SELECT 1 FROM teams t
                                     WHERE t.tenant_id = $1
                                       AND t.name_key = lower(regexp_replace(n.name, '\s', '', 'g'))))
                             AND coalesce((
                                 SELECT array_agg(DISTINCT t.id ORDER BY t.id)
                                 FROM unnest(r.secondary_teams) AS n(name)
                                 JOIN teams t ON t.tenant_id = $1
                                             AND t.name_key = lower(regexp_replace(n.name, '\s', '', 'g'))
                                 WHERE t.id IS DISTINCT FROM
                                       CASE WHEN 'primary_team' = ANY($3) THEN pt.id
                                            ELSE p.primary_team_id END), '{}')
                                 = coalesce((SELECT array_agg(s.id ORDER BY s.id)
                                             FROM unnest(p.secondary_team_ids) AS s(id)), '{}')))
               THEN 'unchanged'
               ELSE 'update'
           END AS action
    FROM review_rows r
    LEFT JOIN people p ON p.tenant_id = $1 AND p.email = r.email AND r.valid
    LEFT JOIN teams pt ON pt.tenant_id = $1
                      AND pt.name_key = lower(regexp_replace(r.primary_team, '\s', '', 'g'))
) c
WHERE r.row_number = c.row_number;

-- name: review_action_counts
-- How many rows the import would create, update, leave unchanged, skip, or
-- leave out as invalid.
SELECT action, count(*)::int AS rows FROM review_rows GROUP BY action;

-- name: review_row_actions
-- Each row's e-mail and action, in file order, at most $1 of them.
SELECT row_number, email, action FROM review_rows ORDER BY row_number LIMIT $1;

-- name: review_sweep_counts
-- What a sync import's sweep would find (same rule as sweep_candidates: every
-- e-mail written in the file counts as present, invalid rows included), and
-- the active people now plus those the file would reactivate: the sweep's
-- guard compares against the active people after the rows are applied.
SELECT count(*) FILTER (WHERE p.status = 'active' AND f.email IS NULL AND p.role <> 'admin')::int
           AS would_deactivate,
       count(*) FILTER (WHERE p.status = 'active' AND f.email IS NULL AND p.role = 'admin')::int
           AS admins_kept,
       count(*) FILTER (WHERE p.status = 'active')::int AS active,
       count(*) FILTER (WHERE p.status <> 'active' AND f.reactivates)::int AS reactivated
FROM people p
LEFT JOIN (SELECT email, bool_or(action = 'update') AS reactivates
           FROM review_rows WHERE email IS NOT NULL GROUP BY email) f ON f.email = p.email
WHERE p.tenant_id = $1;

-- name: review_sweep_people
-- The e-mails a sync import's sweep would deactivate, alphabetically, at most $2.
SELECT p.email FROM people p
WHERE p.tenant_id = $1 AND p.status = 'active' AND p.role <> 'admin'
  AND NOT EXISTS (SELECT 1 FROM review_rows r WHERE r.email = p.email)
ORDER BY p.email
LIMIT $2;

-- name: review_dominant_domains
-- The two most common e-mail domains among the file's valid rows and tenant
-- $1's people (each address counted once), with the number of addresses.
WITH addresses AS (
    SELECT email, domain FROM review_rows WHERE valid
    UNION
    SELECT email, substring(email FROM '@([^@]*)$') FROM people WHERE tenant_id = $1
), domains AS (
    SELECT domain, count(*) AS addresses FROM addresses GROUP BY domain
)
SELECT domain, addresses::int, (sum(addresses) OVER ())::int AS total
FROM domains ORDER BY addresses DESC, domain LIMIT 2;

-- name: review_domains_near
-- Domains of the file's valid rows whose length is within one of domain $2's,
-- other than $2 and not used by any of tenant $1's people: the candidates for
-- a one-edit typo of $2.
SELECT domain FROM review_rows
WHERE valid AND abs(length(domain) - length($2)) <= 1 AND domain <> $2
EXCEPT
SELECT substring(email FROM '@([^@]*)$') FROM people WHERE tenant_id = $1;

-- name: review_rows_with_domains
-- The valid rows whose e-mail domain is one of $1, in file order.
SELECT row_number, email, raw_email FROM review_rows
WHERE valid AND domain = ANY($1::text[])
ORDER BY row_number;

-- name: review_team_variants
-- Team names on the rows the import would apply that are spelled otherwise
-- than the team they resolve to: tenant $1's existing team with the same key,
-- or else the spelling first written in the file (create_import_teams' rule).
-- position 0 is the primary team, 1.. the secondary ones.
WITH mentions AS (
    SELECT r.row_number, 0::bigint AS position, r.primary_team AS name, r.raw_primary_team AS raw
    FROM review_rows r
    WHERE r.action IN ('create', 'update', 'unchanged') AND r.primary_team IS NOT NULL
    UNION ALL
    SELECT r.row_number, s.position, s.name, r.raw_secondary_teams
    FROM review_rows r
    CROSS JOIN LATERAL unnest(r.secondary_teams) WITH ORDINALITY AS s(name, position)
    WHERE r.action IN ('create', 'update', 'unchanged')
), keyed AS (
    SELECT m.*, lower(regexp_replace(m.name, '\s', '', 'g')) AS key FROM mentions m
), first_spelling AS (
    SELECT DISTINCT ON (key) key, name, row_number FROM keyed ORDER BY key, row_number, position
)
SELECT k.row_number, k.position, k.name, k.raw, f.name AS first_name, f.row_number AS first_row,
       t.name AS existing_name
FROM keyed k
JOIN first_spelling f ON f.key = k.key
LEFT JOIN teams t ON t.tenant_id = $1 AND t.name_key = k.key
WHERE k.name <> coalesce(t.name, f.name)
ORDER BY k.row_number, k.position;

-- name: review_extra_managers
-- Manager rows that will not become their primary team's manager: every
-- Manager row of a team after its first one (assign_team_managers' rule),
-- and in add-only mode ($2) every Manager row of a team of tenant $1 that
-- already has a manager, who keeps it (kept_manager).
WITH managers AS (
    SELECT r.row_number, r.email, r.raw_role, r.primary_team,
           lower(regexp_replace(r.primary_team, '\s', '', 'g')) AS key
    FROM review_rows r
    WHERE r.action IN ('create', 'update', 'unchanged') AND r.role = 'manager'
      AND r.primary_team IS NOT NULL
), ranked AS (
    SELECT m.*,
           first_value(m.row_number) OVER w AS first_row,
           first_value(m.email) OVER w AS first_email,
           first_value(m.primary_team) OVER w AS first_spelling
    FROM managers m
    WINDOW w AS (PARTITION BY m.key ORDER BY m.row_number)
)
SELECT r.row_number, r.raw_role, r.first_row, r.first_email,
       coalesce(t.name, r.first_spelling) AS team, kept.email AS kept_manager
FROM ranked r
LEFT JOIN teams t ON t.tenant_id = $1 AND t.name_key = r.key
LEFT JOIN people kept ON $2 AND kept.tenant_id = $1 AND kept.id = t.manager_id
WHERE r.row_number <> r.first_row OR kept.id IS NOT NULL
ORDER BY r.row_number;

-- name: review_without_jit
-- The review's queries each run once over a table just filled: compiling them
-- (JIT) cost more than it saved (0.7 s of 1.6 s on 200,000 rows).
SET LOCAL jit = off;

-- name: invite_import_people
-- Invites for the people an import created, and for the people it names who
-- are active and have never been invited (a cancelled invite does not count).
-- $3: 'pending' (sent later on request) or 'scheduled' (with batch $4, due $5).
INSERT INTO invites (tenant_id, person_id, import_id, status, batch_id, send_at)
SELECT $2, r.person_id, $1, $3, $4, $5
FROM import_rows r
JOIN people p ON p.id = r.person_id AND p.tenant_id = $2
WHERE r.import_id = $1
  AND r.status IN ('created', 'updated', 'unchanged', 'skipped')
  AND p.status = 'active'
  AND NOT EXISTS (SELECT 1 FROM invites i WHERE i.person_id = p.id AND i.status <> 'cancelled')
ORDER BY r.row_number
ON CONFLICT DO NOTHING;

-- name: insert_invite_batch
INSERT INTO invite_batches (tenant_id, import_id, send_at) VALUES ($1, $2, $3)
RETURNING id, send_at;

-- name: schedule_pending_invites
-- `invites send`: the tenant's pending invites (of one import, when given) join batch $3.
UPDATE invites SET status = 'scheduled', batch_id = $3, send_at = $4
WHERE tenant_id = $1 AND status = 'pending' AND ($2::bigint IS NULL OR import_id = $2);

-- name: scheduled_batches_of_import
SELECT id, send_at FROM invite_batches WHERE import_id = $1 AND state = 'scheduled';

-- name: lock_invite_batch
SELECT id, tenant_id, send_at, state FROM invite_batches WHERE id = $1 FOR UPDATE;

-- name: release_invite_batch
UPDATE invite_batches SET state = 'released', released_at = now() WHERE id = $1 AND state = 'scheduled';

-- name: invites_to_send
-- Streamed by the fan-out: scheduled invites of a batch whose last attempt,
-- if any, is older than $2 seconds (so a fan-out repeated by housekeeping does
-- not hurry invites that are backing off between retries).
-- Paged after invite $3, $4 at a time (short statements, as pending_rows).
SELECT id FROM invites
WHERE batch_id = $1 AND status = 'scheduled'
  AND (claimed_at IS NULL OR claimed_at < now() - make_interval(secs => $2))
  AND id > $3
ORDER BY id
LIMIT $4;

-- name: overdue_invite_batches
-- Batches whose delayed message should have fired $1 seconds ago (lost with
-- Redis, or never sent because a worker died), and, when the broker holds no
-- send message at all ($3), released batches that still hold scheduled
-- invites (a fan-out cut short, or its messages lost). While send messages
-- are queued the batch is still draining (at the rate limit, a big one takes
-- hours): re-sending its invites then would only multiply the messages.
SELECT b.id FROM invite_batches b
WHERE b.state = 'scheduled' AND b.send_at < now() - make_interval(secs => $1)
UNION
SELECT DISTINCT i.batch_id FROM invites i
JOIN invite_batches b ON b.id = i.batch_id
WHERE $3 AND b.state = 'released' AND b.released_at < now() - make_interval(secs => $1)
  AND i.status = 'scheduled'
  AND (i.claimed_at IS NULL OR i.claimed_at < now() - make_interval(secs => $2))
UNION
SELECT DISTINCT i.batch_id FROM invites i
WHERE i.status = 'sending' AND i.claimed_at < now() - make_interval(secs => $2);

-- name: claim_invite
-- Taken before sending: only one delivery of a send message gets a row back.
-- A claim older than $4 seconds was abandoned by a dead worker and is taken over.
UPDATE invites i
SET status = 'sending', claimed_at = now(), attempts = i.attempts + 1, token_hash = $2,
    message_id = $3
FROM people p, tenants t
WHERE i.id = $1 AND p.id = i.person_id AND p.tenant_id = i.tenant_id AND t.id = i.tenant_id
  AND p.status = 'active'
  AND (i.status = 'scheduled'
       OR (i.status = 'sending' AND i.claimed_at < now() - make_interval(secs => $4)))
RETURNING i.id, i.tenant_id, t.name AS tenant_name, t.default_language, p.email,
          p.first_name, p.last_name, p.language;

-- name: invite_state
SELECT i.status, p.status AS person_status FROM invites i
JOIN people p ON p.id = i.person_id AND p.tenant_id = i.tenant_id
WHERE i.id = $1;

-- name: cancel_invite_of_inactive_person
UPDATE invites SET status = 'cancelled', error = 'the person was deactivated before it was sent'
WHERE id = $1 AND status IN ('pending', 'scheduled', 'sending');

-- name: mark_invite_sent
UPDATE invites SET status = 'sent', sent_at = now(), error = NULL WHERE id = $1 AND status = 'sending';

-- name: release_invite_claim
-- A transient failure: back to scheduled, to be retried.
UPDATE invites SET status = 'scheduled', error = $2 WHERE id = $1 AND status = 'sending';

-- name: fail_invite
UPDATE invites SET status = 'failed', error = $2 WHERE id = $1 AND status IN ('scheduled', 'sending');

-- name: cancel_import_invites
UPDATE invites SET status = 'cancelled', error = 'the import was cancelled'
WHERE import_id = $1 AND status IN ('pending', 'scheduled');

-- name: cancel_import_invite_batches
UPDATE invite_batches SET state = 'cancelled' WHERE import_id = $1 AND state = 'scheduled';

-- name: tenant_invite_counts
SELECT count(*) FILTER (WHERE status = 'pending')::int AS pending,
       count(*) FILTER (WHERE status = 'scheduled')::int AS scheduled,
       count(*) FILTER (WHERE status = 'sent')::int AS sent,
       count(*) FILTER (WHERE status = 'failed')::int AS failed
FROM invites WHERE tenant_id = $1;

-- name: upsert_tenant
INSERT INTO tenants (id, name, timezone, default_language)
VALUES ($1, coalesce($2, $1), coalesce($3, 'UTC'), coalesce($4, 'en'))
ON CONFLICT (id) DO UPDATE
SET name = coalesce($2, tenants.name), timezone = coalesce($3, tenants.timezone),
    default_language = coalesce($4, tenants.default_language)
RETURNING id, name, timezone, default_language;

-- name: database_now
-- The database's clock: due times are compared with it, never with a worker's.
SELECT now();

-- name: stalled_import_candidates
-- Imports that should be moving and have not for $1 seconds: running or
-- finalizing ones whose last row settled (or that started) longer ago, and a
-- tenant's oldest queued import when none of the tenant's imports is active
-- (the step that starts it was lost). Whether the broker still holds work for
-- them is for the caller to check.
SELECT i.id, i.tenant_id, i.state,
       extract(epoch FROM now() - greatest(i.created_at, i.started_at, c.progressed_at))::int
           AS idle_s
FROM imports i
LEFT JOIN LATERAL (SELECT max(progressed_at) AS progressed_at
                   FROM import_counters WHERE import_id = i.id) c ON true
WHERE (i.state IN ('running', 'finalizing')
       OR (i.state = 'queued'
           AND i.id = (SELECT min(q.id) FROM imports q
                       WHERE q.tenant_id = i.tenant_id AND q.state = 'queued')
           AND NOT EXISTS (SELECT 1 FROM imports a
                           WHERE a.tenant_id = i.tenant_id
                             AND a.state IN ('running', 'finalizing', 'blocked'))))
  AND greatest(i.created_at, i.started_at, c.progressed_at) < now() - make_interval(secs => $1)
ORDER BY i.id;

-- name: try_housekeeping_lock
SELECT pg_try_advisory_lock($1);

-- name: release_housekeeping_lock
SELECT pg_advisory_unlock($1);

-- name: insert_api_token
-- A token of the HTTP API (only its SHA-256 hash); tenant $2 NULL: an operator's.
INSERT INTO api_tokens (token_hash, tenant_id, label) VALUES ($1, $2, $3)
RETURNING id, tenant_id, label, created_at;

-- name: find_api_token
-- The live token with this hash, if any.
SELECT id, tenant_id, label FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL;

-- name: revoke_api_token
-- Revoked once; revoking again returns nothing.
UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL
RETURNING id, tenant_id, label;

-- name: api_token_exists
SELECT 1 FROM api_tokens WHERE id = $1;

-- name: api_list_imports
-- The HTTP API's list: imports of tenant $1 (NULL: every tenant), newest
-- first, at most $2, with ids below $3 when given (the next page).
SELECT id, tenant_id, mode, state, invites, filename, total_rows, invalid_rows,
       created_at, started_at, finished_at
FROM imports
WHERE ($1::text IS NULL OR tenant_id = $1) AND ($3::bigint IS NULL OR id < $3)
ORDER BY id DESC
LIMIT $2;

-- name: metrics_row_outcomes
-- Rows settled by every import so far, per outcome, plus the rows rejected at
-- validation; read by GET /metrics at scrape time (workers are separate
-- processes, so the database is the one place that has the totals).
SELECT coalesce(sum(created), 0)::bigint AS created, coalesce(sum(updated), 0)::bigint AS updated,
       coalesce(sum(unchanged), 0)::bigint AS unchanged, coalesce(sum(skipped), 0)::bigint AS skipped,
       coalesce(sum(failed), 0)::bigint AS failed,
       (SELECT coalesce(sum(invalid_rows), 0) FROM imports)::bigint AS invalid
FROM import_counters;

-- name: metrics_invite_statuses
SELECT status, count(*)::bigint AS invites FROM invites GROUP BY status;

-- name: metrics_import_states
SELECT state, count(*)::bigint AS imports FROM imports GROUP BY state;

-- name: dashboard_imports
-- The dashboard's list: every import not yet ended, then the latest $1, with
-- their outcome counts and the database's clock (for rates and ETAs).
SELECT i.id, i.tenant_id, i.mode, i.state, i.invites, i.filename, i.total_rows, i.invalid_rows,
       i.would_deactivate, i.deactivated, i.error, i.created_at, i.started_at, i.finished_at,
       coalesce(c.created, 0)::int AS created, coalesce(c.updated, 0)::int AS updated,
       coalesce(c.unchanged, 0)::int AS unchanged, coalesce(c.skipped, 0)::int AS skipped,
       coalesce(c.failed, 0)::int AS failed, now() AS now
FROM imports i
LEFT JOIN LATERAL (
    SELECT sum(created) AS created, sum(updated) AS updated, sum(unchanged) AS unchanged,
           sum(skipped) AS skipped, sum(failed) AS failed
    FROM import_counters WHERE import_id = i.id
) c ON true
WHERE i.state IN ('queued', 'running', 'finalizing', 'blocked')
   OR i.id IN (SELECT id FROM imports ORDER BY id DESC LIMIT $1)
ORDER BY i.id DESC;

-- name: dashboard_failed_rows
-- The first $2 rejected or failed rows of an import, for its dashboard page.
SELECT row_number, status, email, errors FROM import_rows
WHERE import_id = $1 AND status IN ('invalid', 'failed') ORDER BY row_number LIMIT $2;
