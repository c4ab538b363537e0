-- 0017: rows that change nothing settle when the file is recorded (core.intake.submit).
-- person_version: the stored person's row version (people.xmin) when the
-- recording compared the row with them and settled it as unchanged; NULL on
-- every other row (the workers' rows, invalid rows). Before the import is
-- finalized each such row is compared with its person's version again: a
-- person written since (by anyone: an admin, another import, an undo, a
-- direct UPDATE, whether or not it bumps updated_at) sends the row back to
-- pending and through the workers after all (core.imports.finalize_import).
ALTER TABLE import_rows ADD COLUMN person_version xid;

-- How many of the import's rows are settled that way (and not sent back since):
-- the re-check runs only for an import that has some.
ALTER TABLE imports ADD COLUMN unchanged_at_recording integer NOT NULL DEFAULT 0;
