-- R24 at scale: each SLA clock kept per case (or carrier claim) as its ledger is written,
-- so SLA compliance over a year reads one row per clock instead of searching 2M events
-- for each start's first end. Kept by triggers on the ledgers rather than by the ledger
-- activities: every way an event is appended (the case and claim ledger steps, erasure's
-- own event) keeps the clocks current, in the same transaction as the event, and a
-- retried step (ON CONFLICT DO NOTHING) fires nothing.

-- The clocks, one row per SLA_CLOCKS entry of domain/analytics.py (a test holds the two
-- equal): from an event with a `starts` action to the first later event of the same case
-- (or claim) with an `ends` action or by an `ends_roles` role.
CREATE TABLE sla_clock_rules (
    clock      text    PRIMARY KEY,  -- the policy setting naming its deadline
    on_claims  boolean NOT NULL,
    starts     text[]  NOT NULL,
    ends       text[]  NOT NULL,
    ends_roles text[]  NOT NULL
);
INSERT INTO sla_clock_rules VALUES
    ('review_deadline', false, '{review_started}', '{}', '{agent,manager,supervisor}'),
    ('inspection_deadline', false, '{parcel_received}',
     '{inspection_failed,inspection_passed}', '{}'),
    ('refund_deadline', false, '{inspection_passed}',
     '{refund_issued,refund_not_due,replacement_shipped}', '{}'),
    ('supervisor_response', false, '{escalated}', '{}', '{manager,supervisor}'),
    ('carrier_silence_escalation', true, '{claim_filed}', '{carrier_answered}', '{}');

-- One row per started clock: `id` is the case (or, for claim clocks, the claim), ended_at
-- null while nothing ended it. Events are appended in seq order, so the first end event
-- written after a start is the first later one.
CREATE TABLE sla_clocks (
    clock      text        NOT NULL REFERENCES sla_clock_rules,
    id         text        NOT NULL,
    start_seq  integer     NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at   timestamptz,
    PRIMARY KEY (clock, id, start_seq)
);
CREATE INDEX sla_clocks_running_idx ON sla_clocks (id) WHERE ended_at IS NULL;

CREATE FUNCTION sla_clocks_follow(
    on_claims boolean, ledger_id text, seq integer, occurred_at timestamptz, action text,
    role text
) RETURNS void LANGUAGE sql AS $$
    UPDATE sla_clocks s SET ended_at = occurred_at
    FROM sla_clock_rules r
    WHERE s.id = ledger_id AND s.ended_at IS NULL AND s.start_seq < seq
          AND r.clock = s.clock AND r.on_claims = sla_clocks_follow.on_claims
          AND (action = ANY(r.ends) OR role = ANY(r.ends_roles));
    INSERT INTO sla_clocks (clock, id, start_seq, started_at)
    SELECT r.clock, ledger_id, seq, occurred_at FROM sla_clock_rules r
    WHERE r.on_claims = sla_clocks_follow.on_claims AND action = ANY(r.starts);
$$;

CREATE FUNCTION sla_clocks_follow_case_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM sla_clocks_follow(false, NEW.case_id, NEW.seq, NEW.occurred_at, NEW.action,
                              NEW.role);
    RETURN NULL;
END $$;

CREATE FUNCTION sla_clocks_follow_claim_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- claim_events have no role: a carrier is the only actor
    PERFORM sla_clocks_follow(true, NEW.claim_id, NEW.seq, NEW.occurred_at, NEW.action,
                              NULL);
    RETURN NULL;
END $$;

CREATE TRIGGER case_events_keep_sla_clocks AFTER INSERT ON case_events
    FOR EACH ROW EXECUTE FUNCTION sla_clocks_follow_case_events();
CREATE TRIGGER claim_events_keep_sla_clocks AFTER INSERT ON claim_events
    FOR EACH ROW EXECUTE FUNCTION sla_clocks_follow_claim_events();

-- The clocks of the events already written, as the ledger query read them.
INSERT INTO sla_clocks (clock, id, start_seq, started_at, ended_at)
SELECT r.clock, s.id, s.seq, s.occurred_at,
       (SELECT x.occurred_at FROM case_events x
        WHERE x.case_id = s.id AND x.seq > s.seq
              AND (x.action = ANY(r.ends) OR x.role = ANY(r.ends_roles))
        ORDER BY x.seq LIMIT 1)
FROM sla_clock_rules r
JOIN (SELECT case_id AS id, seq, occurred_at, action FROM case_events) s
    ON s.action = ANY(r.starts)
WHERE NOT r.on_claims;
INSERT INTO sla_clocks (clock, id, start_seq, started_at, ended_at)
SELECT r.clock, s.claim_id, s.seq, s.occurred_at,
       (SELECT x.occurred_at FROM claim_events x
        WHERE x.claim_id = s.claim_id AND x.seq > s.seq AND x.action = ANY(r.ends)
        ORDER BY x.seq LIMIT 1)
FROM sla_clock_rules r JOIN claim_events s ON s.action = ANY(r.starts)
WHERE r.on_claims;
