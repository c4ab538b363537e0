-- Webhooks as services and operators read them: the events feed, the deliveries
-- (producer.web.hooks, producer.web.dashboard, producer.cli.webhooks, producer.web.metrics).
-- Named statements: a block runs from its "-- name: NAME" line to the next.

-- name: webhook_deliveries_list
-- The latest deliveries (of tenant $1, when given), newest first, for operators.
SELECT d.id, d.state, d.attempts, d.next_attempt_at, d.last_attempt_at, d.last_status, d.last_error,
       d.delivered_at, d.created_at, ev.public_id AS event_id, ev.type, ev.import_id, ep.id AS endpoint_id,
       ep.url, ep.tenant_id, ep.enabled
FROM webhook_deliveries d
JOIN webhook_events ev ON ev.id = d.event_id
JOIN webhook_endpoints ep ON ep.id = d.endpoint_id
WHERE ($1::text IS NULL OR ep.tenant_id = $1) AND ($2::text IS NULL OR d.state = $2)
ORDER BY d.id DESC
LIMIT $3;

-- name: webhook_events_after
-- The feed: the tenant's events after cursor $2, oldest first.
SELECT id, public_id, payload FROM webhook_events
WHERE tenant_id = $1 AND id > $2
ORDER BY id
LIMIT $3;

-- name: webhook_delivery_counts
-- Deliveries by state, for the metrics and the dashboard (read when asked);
-- failing: pending after at least one failed attempt.
SELECT count(*) FILTER (WHERE state = 'delivered')::int AS delivered,
       count(*) FILTER (WHERE state = 'dead')::int AS dead,
       count(*) FILTER (WHERE state = 'pending')::int AS pending,
       count(*) FILTER (WHERE state = 'pending' AND attempts > 0 AND last_error IS NOT NULL)::int AS failing
FROM webhook_deliveries;
