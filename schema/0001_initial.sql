-- 0001: tenants, teams, people, imports and their rows, invites.
-- The database enforces the invariants: one person per (tenant, e-mail), one
-- team per (tenant, team key), states as checked values, and composite foreign
-- keys that make it impossible for a person, team or invite of one tenant to
-- point at another tenant's rows.

CREATE TABLE tenants (
    id               text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'),
    name             text NOT NULL,
    timezone         text NOT NULL DEFAULT 'UTC',
    default_language text NOT NULL DEFAULT 'en' CHECK (default_language ~ '^[a-z]{2}$'),
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE teams (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  text NOT NULL REFERENCES tenants (id),
    name       text NOT NULL CHECK (btrim(name) <> ''),
    -- Team identity: case- and whitespace-insensitive. producer.validation.team_key
    -- computes the same value in Python; keep the two in step.
    name_key   text GENERATED ALWAYS AS (lower(regexp_replace(name, '\s', '', 'g'))) STORED,
    manager_id bigint,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name_key),
    UNIQUE (tenant_id, id)
);

CREATE TABLE people (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id             text NOT NULL REFERENCES tenants (id),
    email                 text NOT NULL CHECK (email = lower(btrim(email)) AND email LIKE '%_@_%'),
    first_name            text NOT NULL,
    last_name             text NOT NULL,
    job_title             text,
    role                  text NOT NULL DEFAULT 'learner' CHECK (role IN ('learner', 'manager', 'admin')),
    language              text CHECK (language ~ '^[a-z]{2}$'),
    location              text,
    primary_team_id       bigint,
    secondary_team_ids    bigint[] NOT NULL DEFAULT '{}',
    manager_id            bigint CHECK (manager_id <> id),
    status                text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'deactivated')),
    deactivated_at        timestamptz,
    deactivated_by_import bigint,
    last_import_id        bigint,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, email),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, primary_team_id) REFERENCES teams (tenant_id, id),
    FOREIGN KEY (tenant_id, manager_id) REFERENCES people (tenant_id, id),
    CHECK ((status = 'deactivated') = (deactivated_at IS NOT NULL))
);
CREATE INDEX people_primary_team ON people (primary_team_id) WHERE primary_team_id IS NOT NULL;
CREATE INDEX people_manager ON people (manager_id) WHERE manager_id IS NOT NULL;

ALTER TABLE teams
    ADD FOREIGN KEY (tenant_id, manager_id) REFERENCES people (tenant_id, id);

CREATE TABLE imports (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id               text NOT NULL REFERENCES tenants (id),
    mode                    text NOT NULL CHECK (mode IN ('upsert', 'sync', 'add-only')),
    invites                 text NOT NULL CHECK (invites IN ('none', 'now', 'at')),
    send_at                 timestamptz,
    allow_mass_deactivation boolean NOT NULL DEFAULT false,
    state                   text NOT NULL DEFAULT 'queued'
                            CHECK (state IN ('queued', 'running', 'finalizing', 'done', 'failed',
                                             'cancelled', 'blocked')),
    filename                text,
    columns                 jsonb NOT NULL DEFAULT '{}',
    total_rows              integer NOT NULL DEFAULT 0,
    invalid_rows            integer NOT NULL DEFAULT 0,
    blank_rows              integer NOT NULL DEFAULT 0,
    would_deactivate        integer,
    deactivated             integer NOT NULL DEFAULT 0,
    admins_kept             integer NOT NULL DEFAULT 0,
    error                   text,
    idempotency_key         text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    started_at              timestamptz,
    finished_at             timestamptz,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, idempotency_key),
    CHECK ((invites = 'at') = (send_at IS NOT NULL))
);
-- At most one import per tenant holds the tenant (running, finalizing, blocked).
CREATE UNIQUE INDEX imports_one_active_per_tenant ON imports (tenant_id)
    WHERE state IN ('running', 'finalizing', 'blocked');
CREATE INDEX imports_tenant_state ON imports (tenant_id, state, id);

CREATE TABLE import_rows (
    import_id  bigint NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    row_number integer NOT NULL,
    -- Lower-cased, trimmed e-mail even when the row is invalid: the sweep treats
    -- every e-mail written in the file as present, so a typo elsewhere in a row
    -- never deactivates its person.
    email      text,
    data       jsonb,
    raw        jsonb NOT NULL,
    status     text NOT NULL CHECK (status IN ('invalid', 'pending', 'created', 'updated',
                                               'unchanged', 'skipped', 'failed')),
    -- [{"column", "value", "message"}, ...] for invalid and failed rows.
    errors     jsonb,
    person_id  bigint,
    settled_at timestamptz,
    PRIMARY KEY (import_id, row_number)
);
CREATE INDEX import_rows_email ON import_rows (import_id, email);

-- Outcome counters, sharded so concurrent row transactions do not queue on one
-- hot row; an import's counts are the sum over its shards.
CREATE TABLE import_counters (
    import_id bigint NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    shard     smallint NOT NULL,
    created   integer NOT NULL DEFAULT 0,
    updated   integer NOT NULL DEFAULT 0,
    unchanged integer NOT NULL DEFAULT 0,
    skipped   integer NOT NULL DEFAULT 0,
    failed    integer NOT NULL DEFAULT 0,
    PRIMARY KEY (import_id, shard)
);

CREATE TABLE invites (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     text NOT NULL,
    person_id     bigint NOT NULL,
    import_id     bigint,
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'scheduled', 'sending', 'sent', 'failed', 'cancelled')),
    send_at       timestamptz,
    token_hash    bytea,
    message_id    text,
    attempts      integer NOT NULL DEFAULT 0,
    error         text,
    claimed_at    timestamptz,
    sent_at       timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, person_id) REFERENCES people (tenant_id, id),
    FOREIGN KEY (tenant_id, import_id) REFERENCES imports (tenant_id, id)
);
-- One live invite per person: a person is invited once, whatever re-imports happen.
CREATE UNIQUE INDEX invites_one_per_person ON invites (person_id) WHERE status <> 'cancelled';
CREATE INDEX invites_due ON invites (send_at) WHERE status = 'scheduled';
