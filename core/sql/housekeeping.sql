-- The workers' periodic check for lost work (worker.middleware.housekeeping, core.recovery).
-- Named statements: a block runs from its "-- name: NAME" line to the next.

-- name: stalled_import_candidates
-- Imports that should be moving and have not for $1 seconds (only import $2,
-- when given): running or finalizing ones whose last row settled (or that
-- started) longer ago, and a tenant's oldest queued import when none of the
-- tenant's imports is active (the step that starts it was lost). since: when
-- it last moved. Whether the broker still holds work for them is for the
-- caller to check.
SELECT i.id, i.tenant_id, i.state,
       greatest(i.created_at, i.started_at, c.progressed_at) AS since,
       extract(epoch FROM now() - greatest(i.created_at, i.started_at, c.progressed_at))::int
           AS idle_s
FROM imports i
LEFT JOIN LATERAL (SELECT max(progressed_at) AS progressed_at
                   FROM import_counters WHERE import_id = i.id) c ON true
WHERE ($2::bigint IS NULL OR i.id = $2)
  AND (i.state IN ('running', 'finalizing')
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
