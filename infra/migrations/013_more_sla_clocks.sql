-- R24: the SLA clocks 012 did not keep (R10 first contact, R14 daily follow-ups, R15 claim
-- filing), kept by the same triggers. Two kinds of clock join the "from a start to the
-- first end" kind, and 012's clocks are judged exactly as before:
--   * a clock that runs while the case is in one of `while_status` (R14): it starts on
--     entering one, ends on an `ends` action or on leaving them, and the next one starts
--     at once if the case is still there;
--   * a clock due at a date, not after a length (R15 filing): `due` names where the date
--     comes from; it is stored on the clock (`due_at`). A start action that is also an end
--     ends the clock at once (filing is the claim's first event).
ALTER TABLE sla_clock_rules
    ADD COLUMN while_status text[] NOT NULL DEFAULT '{}',
    ADD COLUMN due text CHECK (due IN ('claim_file_deadline'));
ALTER TABLE sla_clocks ADD COLUMN due_at timestamptz;

INSERT INTO sla_clock_rules (clock, on_claims, starts, ends, ends_roles, while_status, due)
VALUES
    ('first_contact_deadline', false, '{evidence_requested,review_started}', '{withdrawn}',
     '{agent,manager,supervisor}', '{}', NULL),
    ('follow_up_interval', false, '{}', '{progress_update_sent}', '{}',
     '{under_review,awaiting_inspection,refund_due,exchange_due,waiting_for_stock,intercepting}',
     NULL),
    ('claim_filing_deadline', true, '{claim_filed,claim_deadline_missed}', '{claim_filed}', '{}',
     '{}', 'claim_file_deadline');

DROP TRIGGER case_events_keep_sla_clocks ON case_events;
DROP TRIGGER claim_events_keep_sla_clocks ON claim_events;
DROP FUNCTION sla_clocks_follow_case_events();
DROP FUNCTION sla_clocks_follow_claim_events();
DROP FUNCTION sla_clocks_follow(boolean, text, integer, timestamptz, text, text);

-- `only_clocks`: the clocks to follow (null: all); the backfill below follows the new ones.
CREATE FUNCTION sla_clocks_follow(
    on_claims boolean, ledger_id text, seq integer, occurred_at timestamptz, action text,
    role text, status text, only_clocks text[] DEFAULT NULL
) RETURNS void LANGUAGE sql AS $$
    UPDATE sla_clocks s SET ended_at = occurred_at
    FROM sla_clock_rules r
    WHERE s.id = ledger_id AND s.ended_at IS NULL AND s.start_seq < seq
          AND r.clock = s.clock AND r.on_claims = sla_clocks_follow.on_claims
          AND (only_clocks IS NULL OR r.clock = ANY(only_clocks))
          AND (action = ANY(r.ends) OR role = ANY(r.ends_roles)
               OR (r.while_status <> '{}' AND NOT status = ANY(r.while_status)));
    INSERT INTO sla_clocks (clock, id, start_seq, started_at, ended_at, due_at)
    SELECT r.clock, ledger_id, seq, occurred_at,
           CASE WHEN r.while_status = '{}' AND action = ANY(r.ends) THEN occurred_at END,
           CASE r.due WHEN 'claim_file_deadline' THEN
               (SELECT cc.file_deadline FROM carrier_claims cc WHERE cc.claim_id = ledger_id)
           END
    FROM sla_clock_rules r
    WHERE r.on_claims = sla_clocks_follow.on_claims
          AND (only_clocks IS NULL OR r.clock = ANY(only_clocks))
          AND CASE WHEN r.while_status = '{}' THEN action = ANY(r.starts)
                   ELSE status = ANY(r.while_status)
                        AND NOT EXISTS (SELECT 1 FROM sla_clocks s
                                        WHERE s.clock = r.clock AND s.id = ledger_id
                                              AND s.ended_at IS NULL)
              END;
$$;

CREATE FUNCTION sla_clocks_follow_case_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM sla_clocks_follow(false, NEW.case_id, NEW.seq, NEW.occurred_at, NEW.action,
                              NEW.role, NEW.status_after);
    RETURN NULL;
END $$;

CREATE FUNCTION sla_clocks_follow_claim_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- claim_events have no role: a carrier is the only actor
    PERFORM sla_clocks_follow(true, NEW.claim_id, NEW.seq, NEW.occurred_at, NEW.action,
                              NULL, NEW.status_after);
    RETURN NULL;
END $$;

CREATE TRIGGER case_events_keep_sla_clocks AFTER INSERT ON case_events
    FOR EACH ROW EXECUTE FUNCTION sla_clocks_follow_case_events();
CREATE TRIGGER claim_events_keep_sla_clocks AFTER INSERT ON claim_events
    FOR EACH ROW EXECUTE FUNCTION sla_clocks_follow_claim_events();

-- The new clocks of the events already written, followed event by event in seq order.
DO $$
DECLARE
    e record;
    new_clocks text[] := '{first_contact_deadline,follow_up_interval,claim_filing_deadline}';
BEGIN
    FOR e IN SELECT * FROM case_events ORDER BY case_id, seq LOOP
        PERFORM sla_clocks_follow(false, e.case_id, e.seq, e.occurred_at, e.action, e.role,
                                  e.status_after, new_clocks);
    END LOOP;
    FOR e IN SELECT * FROM claim_events ORDER BY claim_id, seq LOOP
        PERFORM sla_clocks_follow(true, e.claim_id, e.seq, e.occurred_at, e.action, NULL,
                                  e.status_after, new_clocks);
    END LOOP;
END $$;
