-- A tenant's sources and their runs (core.sources: store, runs, ticks).
-- Named statements: a block runs from its "-- name: NAME" line to the next.
-- Times come from the caller ($now), so that the tests control the clock.

-- name: insert_source
INSERT INTO sources (tenant_id, name, kind, url, host_key, host_key_fingerprint, header_name, secret,
                     options, schedule, schedule_from, next_run_at, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $11, $11)
RETURNING id;

-- name: source_of_tenant
-- A source as shown, with its last run; $2 NULL: any tenant's (operators).
SELECT s.id, s.tenant_id, s.name, s.kind, s.url, s.host_key_fingerprint, s.header_name,
       s.secret IS NOT NULL AS has_secret, s.options, s.schedule, s.next_run_at, s.paused,
       s.created_at, s.updated_at, s.removed_at,
       r.id AS run_id, r.outcome AS run_outcome, r.state AS run_state, r.reason AS run_reason,
       r.import_id AS run_import_id, r.filename AS run_filename, r.created_at AS run_created_at,
       r.finished_at AS run_finished_at
FROM sources s
LEFT JOIN LATERAL (SELECT * FROM source_runs WHERE source_id = s.id ORDER BY id DESC LIMIT 1) r ON true
WHERE s.id = $1 AND ($2::text IS NULL OR s.tenant_id = $2) AND s.removed_at IS NULL;

-- name: sources_of_tenant
-- The sources (of tenant $1; NULL: every tenant's), each with its last run.
SELECT s.id, s.tenant_id, s.name, s.kind, s.url, s.host_key_fingerprint, s.header_name,
       s.secret IS NOT NULL AS has_secret, s.options, s.schedule, s.next_run_at, s.paused,
       s.created_at, s.updated_at, s.removed_at,
       r.id AS run_id, r.outcome AS run_outcome, r.state AS run_state, r.reason AS run_reason,
       r.import_id AS run_import_id, r.filename AS run_filename, r.created_at AS run_created_at,
       r.finished_at AS run_finished_at
FROM sources s
LEFT JOIN LATERAL (SELECT * FROM source_runs WHERE source_id = s.id ORDER BY id DESC LIMIT 1) r ON true
WHERE ($1::text IS NULL OR s.tenant_id = $1) AND s.removed_at IS NULL
ORDER BY s.tenant_id, s.id
LIMIT $2;

-- name: source_for_run
-- What a run needs of its source, secret included (decrypted by the caller).
SELECT id, tenant_id, name, kind, url, host_key, header_name, secret, options, schedule_from, removed_at
FROM sources WHERE id = $1;

-- name: pause_source
UPDATE sources SET paused = true, next_run_at = NULL, updated_at = $3
WHERE id = $1 AND tenant_id = $2 AND removed_at IS NULL
RETURNING id;

-- name: resume_source
-- The next tick is the caller's, from now: ticks missed while paused do not run.
UPDATE sources SET paused = false, next_run_at = $3, updated_at = $4
WHERE id = $1 AND tenant_id = $2 AND removed_at IS NULL
RETURNING id;

-- name: remove_source
-- Kept for the history (its runs and imports name it); its secret erased, never run again.
UPDATE sources SET removed_at = $3, secret = NULL, next_run_at = NULL, paused = true, updated_at = $3
WHERE id = $1 AND tenant_id = $2 AND removed_at IS NULL
RETURNING id;

-- name: due_sources
-- Sources whose tick is due at $1, locked for the claim; a source another
-- process is claiming right now is skipped (it has that tick in hand).
SELECT s.id, s.tenant_id, s.schedule, s.schedule_from, s.next_run_at, t.timezone
FROM sources s JOIN tenants t ON t.id = s.tenant_id
WHERE s.next_run_at <= $1 AND NOT s.paused AND s.removed_at IS NULL
ORDER BY s.next_run_at
LIMIT $2
FOR UPDATE OF s SKIP LOCKED;

-- name: advance_source
-- The claim: only the process that finds the tick it read moves it on.
UPDATE sources SET next_run_at = $3 WHERE id = $1 AND next_run_at = $2 RETURNING id;

-- name: insert_source_run
-- A run of the source for tick $3 (NULL: run now). Nothing when the tick has
-- its run already, or the source has a run still unfinished (that one will
-- fetch the newest file).
INSERT INTO source_runs (source_id, tenant_id, tick, next_attempt_at, created_at, approved_sha256)
VALUES ($1, $2, $3, $4, $4, $5)
ON CONFLICT DO NOTHING
RETURNING id;

-- name: open_run_of_source
SELECT id FROM source_runs WHERE source_id = $1 AND state = 'pending';

-- name: claim_source_run
-- Taken before an attempt: one worker attempts a run at a time; a claim past
-- claimed_until was abandoned (a dead worker) and is taken over.
UPDATE source_runs
SET attempts = attempts + 1, claimed_until = $2::timestamptz + make_interval(secs => $3),
    started_at = coalesce(started_at, $2)
WHERE id = $1 AND state = 'pending' AND next_attempt_at <= $2
  AND (claimed_until IS NULL OR claimed_until < $2)
RETURNING id, source_id, tenant_id, attempts, approved_sha256;

-- name: source_run_due
SELECT state, next_attempt_at FROM source_runs WHERE id = $1;

-- name: retry_source_run
UPDATE source_runs SET next_attempt_at = $2, claimed_until = NULL, reason = $3
WHERE id = $1 AND state = 'pending';

-- name: finish_source_run
UPDATE source_runs
SET state = 'done', outcome = $2, reason = $3, filename = coalesce($4, filename),
    bytes = coalesce($5, bytes), sha256 = coalesce($6, sha256), import_id = $7,
    finished_at = $8, would_deactivate = $9, claimed_until = NULL
WHERE id = $1 AND state = 'pending'
RETURNING id;

-- name: last_imported_hash
-- The SHA-256 of the file the source last imported.
SELECT sha256 FROM source_runs
WHERE source_id = $1 AND outcome = 'imported'
ORDER BY id DESC LIMIT 1;

-- name: source_run
SELECT r.id, r.source_id, r.tenant_id, r.tick, r.state, r.outcome, r.reason, r.filename, r.bytes,
       r.sha256, r.import_id, r.would_deactivate, r.attempts, r.next_attempt_at, r.created_at, r.started_at, r.finished_at,
       s.name AS source_name
FROM source_runs r JOIN sources s ON s.id = r.source_id
WHERE r.id = $1 AND ($2::text IS NULL OR r.tenant_id = $2);

-- name: runs_of_source
SELECT r.id, r.source_id, r.tenant_id, r.tick, r.state, r.outcome, r.reason, r.filename, r.bytes,
       r.sha256, r.import_id, r.would_deactivate, r.attempts, r.next_attempt_at, r.created_at, r.started_at, r.finished_at,
       s.name AS source_name
FROM source_runs r JOIN sources s ON s.id = r.source_id
WHERE r.source_id = $1 AND r.tenant_id = $2
ORDER BY r.id DESC
LIMIT $3;

-- name: stopped_runs_of_tenant
-- The tenant's latest runs that ended blocked or failed this past week (the admins' history).
SELECT r.id, r.source_id, r.tenant_id, r.tick, r.state, r.outcome, r.reason, r.filename, r.bytes,
       r.sha256, r.import_id, r.would_deactivate, r.attempts, r.next_attempt_at, r.created_at, r.started_at, r.finished_at,
       s.name AS source_name
FROM source_runs r JOIN sources s ON s.id = r.source_id
WHERE r.tenant_id = $1 AND r.outcome IN ('blocked', 'failed') AND r.finished_at > now() - interval '7 days'
ORDER BY r.id DESC
LIMIT $2;

-- name: overdue_source_runs
-- Unfinished runs due more than $2 seconds before $1 with no attempt in
-- progress: their message was lost (Redis, a worker's crash) or never sent.
SELECT id FROM source_runs
WHERE state = 'pending' AND next_attempt_at < $1::timestamptz - make_interval(secs => $2)
  AND (claimed_until IS NULL OR claimed_until < $1)
ORDER BY next_attempt_at
LIMIT $3;

-- name: source_run_counts
-- Runs by outcome (and unfinished ones), for the metrics.
SELECT coalesce(outcome, 'pending') AS outcome, count(*)::int AS runs
FROM source_runs GROUP BY 1;
