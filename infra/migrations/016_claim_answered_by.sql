-- R15, R23: a carrier's answer names the machine client that sent it. A carrier
-- credential answers only the claims of the carriers it was made for (infra/identity.py);
-- the claim's ledger records which client answered. Steps of the workflow itself, and
-- answers recorded before this column, have none.
ALTER TABLE claim_events ADD COLUMN answered_by text;
