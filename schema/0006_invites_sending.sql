-- 0006: the invites being sent, for housekeeping.
-- Every housekeeping pass looks for invites whose claim ('sending') is older
-- than the claim timeout. Without an index of their own that read the whole
-- invites_batch index (60 ms a pass with a million invites); this one holds
-- only the invites in flight to the mail server, a handful at any time.

CREATE INDEX invites_sending ON invites (claimed_at) WHERE status = 'sending';
