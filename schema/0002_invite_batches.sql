-- 0002: invitation schedules.
-- A batch is one decision to send invites at a time (an import's "now" or
-- "at", or one `invites send`). PostgreSQL holds the schedule; the broker
-- holds one delayed message per batch, which can be re-created from here.

CREATE TABLE invite_batches (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants (id),
    import_id   bigint,
    send_at     timestamptz NOT NULL,
    state       text NOT NULL DEFAULT 'scheduled'
                CHECK (state IN ('scheduled', 'released', 'cancelled')),
    released_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, import_id) REFERENCES imports (tenant_id, id)
);
CREATE INDEX invite_batches_due ON invite_batches (send_at) WHERE state = 'scheduled';

ALTER TABLE invites
    ADD COLUMN batch_id bigint,
    ADD FOREIGN KEY (tenant_id, batch_id) REFERENCES invite_batches (tenant_id, id);
CREATE INDEX invites_batch ON invites (batch_id, status);
CREATE INDEX invites_import ON invites (import_id);
CREATE INDEX invites_tenant_status ON invites (tenant_id, status);
