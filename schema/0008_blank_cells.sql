-- 0008: the blank_cells import option (worker.vocabulary.BLANK_CELLS).
-- clear: a blank cell in a column of the file clears the stored value (what
-- every import did before this option, hence the default for recorded ones);
-- keep: a blank cell leaves the stored value as it is.
ALTER TABLE imports
    ADD COLUMN blank_cells text NOT NULL DEFAULT 'clear' CHECK (blank_cells IN ('clear', 'keep'));
