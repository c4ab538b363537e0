-- Webhooks: an import's status, its events, the endpoints and the deliveries
-- (core.status, core.webhooks.events, core.webhooks.endpoints, core.webhooks.deliveries).
-- Named statements: a block runs from its "-- name: NAME" line to the next.

-- name: status_of_import
SELECT i.id, i.tenant_id, i.mode, i.blank_cells, i.invites, i.send_at, i.state, i.filename, i.columns,
       i.total_rows, i.invalid_rows, i.blank_rows, i.would_deactivate, i.deactivated, i.admins_kept,
       i.error, i.idempotency_key, i.external_id, i.created_at, i.started_at, i.finished_at, i.undoes,
       i.match_by, i.email_changed, i.email_changed_invited, i.source_id, s.name AS source_name
FROM imports i LEFT JOIN sources s ON s.id = i.source_id
WHERE i.id = $1;

-- name: status_row_counts
SELECT coalesce(sum(created), 0)::int AS created, coalesce(sum(updated), 0)::int AS updated,
       coalesce(sum(unchanged), 0)::int AS unchanged, coalesce(sum(skipped), 0)::int AS skipped,
       coalesce(sum(failed), 0)::int AS failed
FROM import_counters WHERE import_id = $1;

-- name: status_invite_counts
SELECT count(*) FILTER (WHERE status = 'pending')::int AS pending,
       count(*) FILTER (WHERE status = 'scheduled')::int AS scheduled,
       count(*) FILTER (WHERE status = 'sent')::int AS sent,
       count(*) FILTER (WHERE status = 'failed')::int AS failed
FROM invites WHERE import_id = $1;

-- name: record_webhook_event
-- The event and one pending delivery per enabled endpoint of the tenant that
-- subscribed to its type, in one statement of the caller's transaction.
-- Nothing when the import already has an event of this type. Returns the
-- deliveries made (none when no endpoint listens, the event recorded all the same).
WITH event AS (
    INSERT INTO webhook_events (public_id, tenant_id, import_id, type, payload, created_at)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (import_id, type) DO NOTHING
    RETURNING id, tenant_id, type
)
INSERT INTO webhook_deliveries (event_id, endpoint_id)
SELECT event.id, e.id
FROM event
JOIN webhook_endpoints e ON e.tenant_id = event.tenant_id AND e.enabled AND event.type = ANY (e.events)
RETURNING id;

-- name: webhook_event_exists
SELECT EXISTS (SELECT 1 FROM webhook_events WHERE import_id = $1 AND type = $2);

-- name: tenant_active_people
SELECT count(*)::int FROM people WHERE tenant_id = $1 AND status = 'active';

-- name: lock_import_for_invites
-- Serialises the settling of an import's invites with the check that follows:
-- of two workers settling its last two invites at once, the second to take
-- the lock sees the first's invite settled (read committed: its next
-- statement sees what committed before), so exactly one records the event.
-- NO KEY UPDATE: foreign-key checks (KEY SHARE) of rows that reference the
-- import are not held up by it.
SELECT id FROM imports WHERE id = $1 FOR NO KEY UPDATE;

-- name: import_has_open_invites
-- One probe of invites_open_by_import, on every invite settled.
SELECT EXISTS (SELECT 1 FROM invites WHERE import_id = $1 AND status IN ('pending', 'scheduled', 'sending'));

-- name: import_invites_settled
-- The import's invites sent and failed, once none is open any more (read once
-- or so per import); no row when none was sent nor failed.
SELECT count(*) FILTER (WHERE status = 'sent')::int AS sent,
       count(*) FILTER (WHERE status = 'failed')::int AS failed
FROM invites WHERE import_id = $1
HAVING count(*) FILTER (WHERE status IN ('sent', 'failed')) > 0;

-- name: invite_import
SELECT import_id FROM invites WHERE id = $1;

-- name: new_deliveries_of_event
-- The deliveries an event recorded just now, for their first message.
SELECT d.id FROM webhook_deliveries d
JOIN webhook_events ev ON ev.id = d.event_id
WHERE ev.import_id = $1 AND ev.type = $2 AND d.state = 'pending' AND d.attempts = 0;

-- name: webhook_tenant_exists
SELECT id FROM tenants WHERE id = $1;

-- name: insert_webhook_endpoint
INSERT INTO webhook_endpoints (tenant_id, url, events, secret) VALUES ($1, $2, $3, $4)
RETURNING id, tenant_id, url, events, enabled, disabled_reason, created_at;

-- name: webhook_endpoints_of_tenant
-- An endpoint with its deliveries' counts (pending, dead, delivered).
SELECT e.id, e.tenant_id, e.url, e.events, e.enabled, e.disabled_reason, e.created_at,
       e.previous_expires_at,
       count(d.id) FILTER (WHERE d.state = 'pending')::int AS pending,
       count(d.id) FILTER (WHERE d.state = 'dead')::int AS dead,
       count(d.id) FILTER (WHERE d.state = 'delivered')::int AS delivered
FROM webhook_endpoints e
LEFT JOIN webhook_deliveries d ON d.endpoint_id = e.id
WHERE e.tenant_id = $1
GROUP BY e.id
ORDER BY e.id;

-- name: delete_webhook_endpoint
DELETE FROM webhook_endpoints WHERE id = $1 AND tenant_id = $2 RETURNING id;

-- name: rotate_webhook_secret
-- The new secret signs from now; the current one too, until $4.
UPDATE webhook_endpoints
SET previous_secret = secret, previous_expires_at = $4, secret = $3
WHERE id = $1 AND tenant_id = $2
RETURNING id;

-- name: claim_webhook_delivery
-- Taken before an attempt: only one worker attempts a delivery at a time. A
-- claim past claimed_until was abandoned (a dead worker) and is taken over.
-- The previous secret comes along while its grace lasts.
UPDATE webhook_deliveries d
SET attempts = d.attempts + 1, claimed_until = now() + make_interval(secs => $2), last_attempt_at = now()
FROM webhook_events ev, webhook_endpoints ep
WHERE d.id = $1 AND ev.id = d.event_id AND ep.id = d.endpoint_id
  AND d.state = 'pending' AND d.next_attempt_at <= now()
  AND (d.claimed_until IS NULL OR d.claimed_until < now())
RETURNING d.id, d.attempts, d.retry_from, ev.public_id, ev.payload, ev.created_at AS event_at, ep.id AS endpoint_id,
          ep.url, ep.enabled, ep.secret,
          CASE WHEN ep.previous_expires_at > now() THEN ep.previous_secret END AS previous_secret,
          now() AS attempted_at;

-- name: webhook_delivery_due
SELECT state, next_attempt_at, now() AS now FROM webhook_deliveries WHERE id = $1;

-- name: mark_webhook_delivered
UPDATE webhook_deliveries
SET state = 'delivered', delivered_at = now(), claimed_until = NULL, last_status = $2, last_error = NULL
WHERE id = $1 AND state = 'pending';

-- name: mark_webhook_failed
-- A failed attempt: tried again at $5, or dead when $5 is null.
UPDATE webhook_deliveries
SET state = CASE WHEN $5::timestamptz IS NULL THEN 'dead' ELSE 'pending' END,
    next_attempt_at = coalesce($5, next_attempt_at), claimed_until = NULL,
    last_status = $2, last_error = $3
WHERE id = $1 AND state = 'pending' AND attempts = $4;

-- name: disable_webhook_endpoint
-- A 410 Gone: the receiver asks for no more; its pending deliveries end dead.
WITH endpoint AS (
    UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2 WHERE id = $1 RETURNING id
)
UPDATE webhook_deliveries d
SET state = 'dead', claimed_until = NULL, last_error = coalesce(d.last_error, $2)
FROM endpoint
WHERE d.endpoint_id = endpoint.id AND d.state = 'pending';

-- name: overdue_webhook_deliveries
-- Pending deliveries due more than $1 seconds ago with no attempt in
-- progress: their message was lost (Redis, a worker's crash) or never sent.
SELECT id FROM webhook_deliveries
WHERE state = 'pending' AND next_attempt_at < now() - make_interval(secs => $1)
  AND (claimed_until IS NULL OR claimed_until < now())
ORDER BY next_attempt_at
LIMIT $2;

-- name: redeliver_webhook
-- An operator's redeliver: a dead (or failing) delivery is due again now,
-- with its retries afresh; a delivered one is sent again only when asked ($3).
UPDATE webhook_deliveries d
SET state = 'pending', next_attempt_at = now(), retry_from = now(), attempts = 0, claimed_until = NULL,
    delivered_at = NULL
FROM webhook_endpoints ep
WHERE d.id = $1 AND ep.id = d.endpoint_id AND ($2::text IS NULL OR ep.tenant_id = $2)
  AND ep.enabled AND (d.state <> 'delivered' OR $3)
RETURNING d.id;

-- name: webhook_delivery_of
SELECT d.id, d.state, ep.enabled, ep.tenant_id, ep.disabled_reason
FROM webhook_deliveries d JOIN webhook_endpoints ep ON ep.id = d.endpoint_id
WHERE d.id = $1;

-- name: record_source_run_event
-- A source run's event (blocked or failed before any import existed) and its
-- deliveries, as record_webhook_event does for an import's; once per run and type.
WITH event AS (
    INSERT INTO webhook_events (public_id, tenant_id, source_run_id, type, payload, created_at)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (source_run_id, type) WHERE source_run_id IS NOT NULL DO NOTHING
    RETURNING id, tenant_id, type
)
INSERT INTO webhook_deliveries (event_id, endpoint_id)
SELECT event.id, e.id
FROM event
JOIN webhook_endpoints e ON e.tenant_id = event.tenant_id AND e.enabled AND event.type = ANY (e.events)
RETURNING id;

-- name: new_deliveries_of_run_event
SELECT d.id FROM webhook_deliveries d
JOIN webhook_events ev ON ev.id = d.event_id
WHERE ev.source_run_id = $1 AND ev.type = $2 AND d.state = 'pending' AND d.attempts = 0;

-- name: import_event_is_batched
-- A SCIM import's completion is reported in a batch (claim_scim_batches), not alone.
SELECT origin = 'scim' FROM imports WHERE id = $1;

-- name: claim_scim_batches
-- The SCIM imports done and not yet reported, marked reported in the caller's
-- transaction (which records their events); SKIP LOCKED: two passes never
-- report one import twice.
WITH due AS (
    SELECT id FROM imports
    WHERE origin = 'scim' AND NOT scim_reported AND state = 'done'
    ORDER BY id
    LIMIT 10000
    FOR UPDATE SKIP LOCKED
)
UPDATE imports i SET scim_reported = true
FROM due
WHERE i.id = due.id
RETURNING i.tenant_id, i.id;
