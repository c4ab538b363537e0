-- 0014: imports that run themselves (issue 26): a tenant's sources (SFTP or
-- HTTPS), their schedule, and each run of one.
-- A source is claimed for its tick in PostgreSQL (core.sources.ticks): the
-- statement that moves next_run_at on from the tick it found is the one that
-- creates the tick's run, and a run is unique per (source, tick), so however
-- many worker processes look at once, a tick has one run. A run holds its own
-- retry schedule (next_attempt_at), as webhook deliveries do; the broker holds
-- at most one (delayed) message per unfinished run, which housekeeping
-- re-creates when it is lost.

CREATE TABLE sources (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     text NOT NULL REFERENCES tenants (id),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    kind          text NOT NULL CHECK (kind IN ('sftp', 'https')),
    -- sftp://user@host:port/path-or-glob or https://host/path; never a password.
    url           text NOT NULL,
    -- SFTP: the server's public key pinned when the source was saved (OpenSSH
    -- form), and its SHA256 fingerprint as shown.
    host_key      text,
    host_key_fingerprint text,
    -- HTTPS: a header sent with each fetch (its value is a secret).
    header_name   text,
    -- Fernet token (SOURCE_SECRET_KEY) of the JSON of the secrets: password,
    -- private_key, header_value. Never shown again once saved.
    secret        text,
    -- ImportOptions.to_json(): mode, blank cells, invites, mapping, ... as saved.
    options       jsonb NOT NULL DEFAULT '{}',
    -- A cron expression in the tenant's timezone, "every N hours" (from
    -- schedule_from), or NULL: runs only when asked.
    schedule      text,
    schedule_from timestamptz NOT NULL DEFAULT now(),
    -- The next tick due; NULL: none (paused, no schedule, removed).
    next_run_at   timestamptz,
    paused        boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    -- Removed sources keep their row for the history of their runs and imports;
    -- their secret is erased.
    removed_at    timestamptz,
    UNIQUE (tenant_id, id),
    CHECK (kind <> 'sftp' OR host_key IS NOT NULL),
    CHECK (removed_at IS NULL OR (secret IS NULL AND next_run_at IS NULL))
);
CREATE UNIQUE INDEX sources_name_per_tenant ON sources (tenant_id, lower(name)) WHERE removed_at IS NULL;
CREATE INDEX sources_due ON sources (next_run_at) WHERE next_run_at IS NOT NULL;

CREATE TABLE source_runs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_id       bigint NOT NULL,
    tenant_id       text NOT NULL,
    -- The schedule's tick it runs for; NULL: asked for by hand (run now).
    tick            timestamptz,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done')),
    outcome         text CHECK (outcome IN ('imported', 'unchanged', 'blocked', 'failed')),
    -- Why it was blocked or failed; while pending, the last attempt's error.
    reason          text,
    filename        text,
    bytes           bigint,
    sha256          bytea,
    import_id       bigint,
    -- Blocked by the sweep guard: how many it would have deactivated.
    would_deactivate integer,
    -- A run an admin approved after a guard block: it imports the file of this
    -- SHA-256 (the blocked one) despite the guard; another file is reviewed as usual.
    approved_sha256 bytea,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- An attempt in progress; a claim past this time was abandoned by a dead worker.
    claimed_until   timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    FOREIGN KEY (tenant_id, source_id) REFERENCES sources (tenant_id, id),
    -- A run's import is of the run's tenant, whatever the code says.
    FOREIGN KEY (tenant_id, import_id) REFERENCES imports (tenant_id, id),
    CHECK ((state = 'done') = (outcome IS NOT NULL)),
    CHECK (outcome <> 'imported' OR import_id IS NOT NULL)
);
-- One run per tick, and one unfinished run per source at a time (a tick that
-- finds a run still retrying is absorbed by it: it will fetch the newest file).
CREATE UNIQUE INDEX source_runs_once_per_tick ON source_runs (source_id, tick);
CREATE UNIQUE INDEX source_runs_one_open ON source_runs (source_id) WHERE state = 'pending';
CREATE INDEX source_runs_of_source ON source_runs (source_id, id);
CREATE INDEX source_runs_due ON source_runs (next_attempt_at) WHERE state = 'pending';

-- The source an import came from (NULL: an upload, the CLI, the API).
ALTER TABLE imports ADD COLUMN source_id bigint;
ALTER TABLE imports ADD FOREIGN KEY (tenant_id, source_id) REFERENCES sources (tenant_id, id);

-- A source's run blocked (or failed) before any import existed records its
-- event too (import.blocked, import.failed): the event names the run instead.
ALTER TABLE webhook_events ALTER COLUMN import_id DROP NOT NULL;
ALTER TABLE webhook_events ADD COLUMN source_run_id bigint REFERENCES source_runs (id);
ALTER TABLE webhook_events ADD CHECK ((import_id IS NULL) <> (source_run_id IS NULL));
CREATE UNIQUE INDEX webhook_events_once_per_run ON webhook_events (source_run_id, type)
    WHERE source_run_id IS NOT NULL;
