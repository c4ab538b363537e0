-- 0011: services hear back: webhook endpoints, the events of imports, their deliveries.
-- An event is written in the transaction that changes its import's state (an
-- outbox), with one pending delivery per subscribed, enabled endpoint of the
-- tenant. PostgreSQL holds each delivery's schedule (next_attempt_at); the
-- broker holds at most one delayed message per pending delivery, which
-- housekeeping re-creates from here when it is lost. Events stay for the
-- pollers' feed (GET /api/events), read by id, the cursor.

-- A caller's own reference for an import, given at submit and sent back in its events.
ALTER TABLE imports
    ADD COLUMN external_id text CHECK (length(external_id) BETWEEN 1 AND 255);

CREATE TABLE webhook_endpoints (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id         text NOT NULL REFERENCES tenants (id),
    url               text NOT NULL,
    -- The event types it receives.
    events            text[] NOT NULL CHECK (cardinality(events) > 0),
    -- whsec_<base64 key> (Standard Webhooks); signing needs the key itself.
    secret            text NOT NULL,
    -- After a rotation the old secret signs too, until previous_expires_at.
    previous_secret   text,
    previous_expires_at timestamptz,
    enabled           boolean NOT NULL DEFAULT true,
    -- Why it was disabled (a 410 Gone), for the operators.
    disabled_reason   text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    CHECK ((previous_secret IS NULL) = (previous_expires_at IS NULL))
);

CREATE TABLE webhook_events (
    -- The feed's cursor: events of a tenant in the order they happened.
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The webhook-id a receiver de-duplicates on, the same on every attempt.
    public_id  text NOT NULL UNIQUE DEFAULT 'evt_' || replace(gen_random_uuid()::text, '-', ''),
    tenant_id  text NOT NULL,
    import_id  bigint NOT NULL,
    type       text NOT NULL
               CHECK (type IN ('import.completed', 'import.failed', 'import.cancelled', 'import.blocked',
                               'invites.completed')),
    -- The body sent, exactly: {"type", "timestamp", "data"}.
    payload    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, import_id) REFERENCES imports (tenant_id, id)
);
CREATE INDEX webhook_events_feed ON webhook_events (tenant_id, id);
-- One event per import and type: a step repeated (a redelivered message), or
-- two workers settling an import's last two invites at once, cannot record
-- the same event twice.
CREATE UNIQUE INDEX webhook_events_once ON webhook_events (import_id, type);

CREATE TABLE webhook_deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        bigint NOT NULL REFERENCES webhook_events (id),
    endpoint_id     bigint NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    -- Where its retries' clock starts (WEBHOOK_MAX_AGE_S): made, or redelivered by hand.
    retry_from      timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- An attempt in progress; a claim past this time was abandoned by a dead worker.
    claimed_until   timestamptz,
    last_attempt_at timestamptz,
    last_status     integer,
    last_error      text,
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, endpoint_id),
    CHECK ((state = 'delivered') = (delivered_at IS NOT NULL))
);
-- The invites of an import still to settle: every send asks whether it was
-- its import's last (invites.completed) with one probe here, where counting
-- the import's invites would read them all on each of a million sends.
CREATE INDEX invites_open_by_import ON invites (import_id) WHERE status IN ('pending', 'scheduled', 'sending');

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, state);
