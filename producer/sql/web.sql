-- The web process: API tokens, listings, the dashboard and /metrics.
-- Named statements: a block runs from its "-- name: NAME" line to the next.

-- name: insert_api_token
-- A token of the HTTP API (only its SHA-256 hash); tenant $2 NULL: an operator's;
-- $4: a tenant admin's token (it may also sign in to the admins' pages);
-- $5: a SCIM token (accepted by /scim/v2 only).
INSERT INTO api_tokens (token_hash, tenant_id, label, admin, scim) VALUES ($1, $2, $3, $4, $5)
RETURNING id, tenant_id, label, admin, scim, created_at;

-- name: find_api_token
-- The live token with this hash, if any.
SELECT id, tenant_id, label, admin, scim FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL;

-- name: revoke_api_token
-- Revoked once; revoking again returns nothing.
UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL
RETURNING id, tenant_id, label;

-- name: api_token_exists
SELECT 1 FROM api_tokens WHERE id = $1;

-- name: list_scim_tokens
-- Tenant $1's live SCIM tokens, newest first (the admins' identity provider page).
SELECT id, label, created_at FROM api_tokens
WHERE tenant_id = $1 AND scim AND revoked_at IS NULL
ORDER BY id DESC;

-- name: revoke_scim_token
-- Token $1, if it is a live SCIM token of tenant $2: an admin revokes their own tenant's only.
UPDATE api_tokens SET revoked_at = now()
WHERE id = $1 AND tenant_id = $2 AND scim AND revoked_at IS NULL
RETURNING id, label;

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

-- name: dashboard_now
-- The database's clock, which the live rate is measured against.
SELECT now();
