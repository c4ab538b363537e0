-- 0012: undoing an import (worker.undo).
-- An import records, for each person it updated or swept, the values it
-- replaced and the values it wrote, field by field and only for the fields it
-- changed, in the statement that writes them (worker/sql/rows.sql
-- update_people, worker/sql/imports.sql deactivate_missing_people); and, for
-- each team whose manager it changed at finalize, the manager before and
-- after. The people it created need no record: they are its import_rows with
-- status 'created'. An undo restores a value only where the stored one is
-- still the value the import wrote.

-- person_id's changes: {"column": [before, after], ...} (to_jsonb of each value).
CREATE TABLE import_changes (
    import_id bigint NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    person_id bigint NOT NULL,
    changes   jsonb NOT NULL,
    PRIMARY KEY (import_id, person_id)
);

CREATE TABLE import_team_changes (
    import_id      bigint NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    team_id        bigint NOT NULL,
    manager_before bigint,
    manager_after  bigint,
    PRIMARY KEY (import_id, team_id)
);

-- An undo is an import of mode 'undo' (worker.vocabulary.UNDO) naming the
-- import it undoes: it gets an id, a state, history, status, cancel, resume
-- and the one-active-per-tenant rule from imports.
ALTER TABLE imports DROP CONSTRAINT imports_mode_check;
ALTER TABLE imports
    ADD CONSTRAINT imports_mode_check CHECK (mode IN ('upsert', 'sync', 'add-only', 'undo')),
    ADD COLUMN undoes bigint REFERENCES imports (id),
    ADD CONSTRAINT imports_undoes_only_for_undo CHECK ((mode = 'undo') = (undoes IS NOT NULL));
CREATE INDEX imports_undoes ON imports (undoes) WHERE undoes IS NOT NULL;

-- An undo's progress and counts: the phase it is in and the last key done
-- (a row number, then a person id), advanced in each batch's transaction, so
-- a crash resumes after the last committed batch.
CREATE TABLE undos (
    import_id         bigint PRIMARY KEY REFERENCES imports (id) ON DELETE CASCADE,
    phase             text NOT NULL DEFAULT 'created'
                      CHECK (phase IN ('created', 'changed', 'teams', 'finished')),
    after_key         bigint NOT NULL DEFAULT 0,
    restored          integer NOT NULL DEFAULT 0,
    deactivated       integer NOT NULL DEFAULT 0,
    reactivated       integer NOT NULL DEFAULT 0,
    kept              integer NOT NULL DEFAULT 0,
    invites_cancelled integer NOT NULL DEFAULT 0,
    invites_sent      integer NOT NULL DEFAULT 0,
    teams_left        integer NOT NULL DEFAULT 0,
    reported          integer NOT NULL DEFAULT 0
);
