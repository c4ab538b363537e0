-- Invitations: batches, their release, one claimed send per invite (core.invites).
-- Named statements: a block runs from its "-- name: NAME" line to the next.

-- name: database_now
-- The database's clock: due times are compared with it, never with a worker's.
SELECT now();

-- name: plan_checks_generically
-- For the invites insert (see invite_import_people in core.invites) and a
-- batch of rows (core.rows.upsert_rows): the pool plans every statement for
-- its parameters (force_custom_plan), and PostgreSQL applies that to the
-- foreign-key checks too, re-planning each check for each row written. Three
-- checks per invite: a million invites took 62 s with them re-planned and
-- 24 s with their plans kept (EXPLAIN ANALYZE). Those statements have one
-- plan shape whatever their parameters (see lock_people in rows.sql).
SET LOCAL plan_cache_mode = auto;

-- name: plan_for_parameters_again
-- Back to the connection's own setting for the rest of the transaction.
SET LOCAL plan_cache_mode TO DEFAULT;

-- name: invite_import_people
-- Invites for the people an import created, and for the people it names who
-- are active and have never been invited (a cancelled invite does not count).
-- $3: 'pending' (sent later on request) or 'scheduled' (with batch $4, due $5).
-- One pass over the import's rows, each person looked up by primary key (a
-- subquery: no join for stale statistics to turn into a nested loop over the
-- tenant's people and the import's rows). "Never invited" is the unique
-- index invites_one_per_person that ON CONFLICT consults anyway: a NOT EXISTS
-- beside it probed the same index once more per row.
INSERT INTO invites (tenant_id, person_id, import_id, status, batch_id, send_at)
SELECT $2, r.person_id, $1, $3, $4, $5
FROM import_rows r
WHERE r.import_id = $1
  AND r.status IN ('created', 'updated', 'unchanged', 'skipped')
  AND (SELECT p.status FROM people p WHERE p.id = r.person_id AND p.tenant_id = $2) = 'active'
ORDER BY r.row_number
ON CONFLICT DO NOTHING;

-- name: insert_invite_batch
INSERT INTO invite_batches (tenant_id, import_id, send_at) VALUES ($1, $2, $3)
RETURNING id, send_at;

-- name: schedule_pending_invites
-- `invites send`: the tenant's pending invites (of one import, when given) join batch $3.
UPDATE invites SET status = 'scheduled', batch_id = $3, send_at = $4
WHERE tenant_id = $1 AND status = 'pending' AND ($2::bigint IS NULL OR import_id = $2);

-- name: retry_failed_invites
-- `invites retry`: the tenant's failed invites (of one import, when given) of
-- people still active join batch $3 as if new: the failed attempt's claim and
-- error go (its attempts stay counted). Each joins one batch only: a second
-- retry finds it scheduled, not failed.
UPDATE invites i SET status = 'scheduled', batch_id = $3, send_at = $4, claimed_at = NULL, error = NULL
FROM people p
WHERE i.tenant_id = $1 AND i.status = 'failed' AND ($2::bigint IS NULL OR i.import_id = $2)
  AND p.id = i.person_id AND p.tenant_id = i.tenant_id AND p.status = 'active';

-- name: schedule_renamed_invites
-- `invites send --resend-renamed`: the tenant's sent invites (of one import,
-- when given) that went to an address their person, still active, no longer
-- has join batch $3: sent again, to the address they have now (a new token;
-- the same Message-ID).
UPDATE invites i SET status = 'scheduled', batch_id = $3, send_at = $4, claimed_at = NULL, error = NULL
FROM people p
WHERE i.tenant_id = $1 AND i.status = 'sent' AND ($2::bigint IS NULL OR i.import_id = $2)
  AND p.id = i.person_id AND p.tenant_id = i.tenant_id AND p.status = 'active'
  AND i.sent_to IS NOT NULL AND i.sent_to <> p.email;

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
-- Run by every housekeeping pass, so it reads what it looks for, not the
-- invites table: the released batches, each probed by invites_batch for one
-- scheduled invite, and the invites being sent (invites_sending). Scanning the
-- invites for scheduled ones took 160 ms a pass with a million invites.
SELECT b.id FROM invite_batches b
WHERE b.state = 'scheduled' AND b.send_at < now() - make_interval(secs => $1)
UNION
SELECT b.id FROM invite_batches b
WHERE $3 AND b.state = 'released' AND b.released_at < now() - make_interval(secs => $1)
  -- A scalar subquery, not EXISTS: the planner turned that into a scan of
  -- every scheduled invite grouped by batch.
  AND (SELECT 1 FROM invites i
       WHERE i.batch_id = b.id AND i.status = 'scheduled'
         AND (i.claimed_at IS NULL OR i.claimed_at < now() - make_interval(secs => $2))
       LIMIT 1) IS NOT NULL
UNION
SELECT DISTINCT i.batch_id FROM invites i
WHERE i.status = 'sending' AND i.claimed_at < now() - make_interval(secs => $2);

-- name: claim_invite
-- Taken before sending: only one delivery of a send message gets a row back.
-- sent_to: the address it goes to (a person renamed later can be sent it again).
-- A claim older than $4 seconds was abandoned by a dead worker and is taken over.
UPDATE invites i
SET status = 'sending', claimed_at = now(), attempts = i.attempts + 1, token_hash = $2,
    message_id = $3, sent_to = p.email
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

-- name: take_rate_permit
-- One permit of rate $1 (at most $2 a second, across every worker process),
-- or no row when this second's are all taken. Seconds older than five are
-- deleted on the way (at most a few rows of this rate, by primary key).
WITH now_s AS (SELECT floor(extract(epoch FROM clock_timestamp()))::bigint AS s),
gone AS (DELETE FROM rate_permits WHERE name = $1 AND second < (SELECT s FROM now_s) - 5)
INSERT INTO rate_permits AS p (name, second, taken)
SELECT $1, s, 1 FROM now_s
ON CONFLICT (name, second) DO UPDATE SET taken = p.taken + 1 WHERE p.taken < $2
RETURNING taken;
