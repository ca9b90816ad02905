-- R24: the SLA clocks 012 did not keep (R10 first contact, R14 daily follow-ups, R15 claim
-- filing), kept by the same triggers. What 013 adds to 012's "from a start to the first
-- end" (012's clocks are judged exactly as before):
--   * an end needs its action and its role where the rule names both (R10: a decision,
--     a call or a payment, by a person); either left empty matches any;
--   * a clock can end without its step: the case entered one of `stops_in` (R10: the
--     case closed) or, for a clock that runs while the case is in one of `while_status`
--     (R14), left them. Such a clock is `stopped`: the report judges it only if it was
--     already past due then (a breach whose hours stop growing), else not at all;
--   * a `while_status` clock starts on entering one of them, and the next one starts at
--     once after an end if the case is still there;
--   * `due` says when a clock is due, stored on it as `due_at`: after its length from the
--     start (null: the report adds the policy's length), at the claim's own filing
--     deadline (R15; a start action that is also an end ends it at once), or at the slot
--     the ending event says it was due at (R14: `details.due_at`, so an update R16 held to
--     the morning is on time; while running, after its length).
ALTER TABLE sla_clock_rules
    ADD COLUMN while_status text[] NOT NULL DEFAULT '{}',
    ADD COLUMN stops_in text[] NOT NULL DEFAULT '{}',
    ADD COLUMN due text NOT NULL DEFAULT 'after_length'
        CHECK (due IN ('after_length', 'at_claim_file_deadline', 'at_slot_of_end')),
    ADD CONSTRAINT sla_clock_rules_end_something CHECK (ends <> '{}' OR ends_roles <> '{}');
ALTER TABLE sla_clocks
    ADD COLUMN due_at timestamptz,
    ADD COLUMN stopped boolean NOT NULL DEFAULT false;

INSERT INTO sla_clock_rules
    (clock, on_claims, starts, ends, ends_roles, while_status, stops_in, due)
VALUES
    ('first_contact_deadline', false, '{evidence_requested,review_started}',
     '{approved,rejected,call_scheduled,compensation_paid}', '{agent,manager,supervisor}',
     '{}', '{refused,refunded,rejected,abandoned,replaced,exchanged,delivered,withdrawn}',
     'after_length'),
    ('follow_up_interval', false, '{}', '{progress_update_sent}', '{}',
     '{under_review,awaiting_inspection,refund_due,exchange_due,waiting_for_stock,intercepting}',
     '{}', 'at_slot_of_end'),
    ('claim_filing_deadline', true, '{claim_filed,claim_deadline_missed}', '{claim_filed}', '{}',
     '{}', '{}', 'at_claim_file_deadline');

DROP TRIGGER case_events_keep_sla_clocks ON case_events;
DROP TRIGGER claim_events_keep_sla_clocks ON claim_events;
DROP FUNCTION sla_clocks_follow_case_events();
DROP FUNCTION sla_clocks_follow_claim_events();
DROP FUNCTION sla_clocks_follow(boolean, text, integer, timestamptz, text, text);

-- R15: a filing clock is due at its claim's deadline, so the claim row must be written
-- before the claim's first event; a clock without it would never be judged.
CREATE FUNCTION carrier_claim_file_deadline(claim text) RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
DECLARE
    deadline timestamptz;
BEGIN
    SELECT cc.file_deadline INTO deadline FROM carrier_claims cc WHERE cc.claim_id = claim;
    IF deadline IS NULL THEN
        RAISE EXCEPTION 'carrier claim % has no carrier_claims row: its filing SLA clock '
                        'is due at the row''s file_deadline; write the row before the '
                        'claim''s events', claim;
    END IF;
    RETURN deadline;
END $$;

-- `slot`: when the event was due, if it says (R14); `only_clocks`: the clocks to follow
-- (null: all); the backfill below follows the new ones.
CREATE FUNCTION sla_clocks_follow(
    on_claims boolean, ledger_id text, seq integer, occurred_at timestamptz, action text,
    role text, status text, slot timestamptz, only_clocks text[] DEFAULT NULL
) RETURNS void LANGUAGE sql AS $$
    UPDATE sla_clocks s
    SET ended_at = occurred_at, stopped = NOT e.by_step,
        due_at = CASE WHEN e.by_step AND r.due = 'at_slot_of_end' THEN slot ELSE s.due_at END
    FROM sla_clock_rules r,
         LATERAL (SELECT coalesce((r.ends = '{}' OR action = ANY(r.ends))
                                  AND (r.ends_roles = '{}' OR role = ANY(r.ends_roles)),
                                  false) AS by_step) e
    WHERE s.id = ledger_id AND s.ended_at IS NULL AND s.start_seq < seq
          AND r.clock = s.clock AND r.on_claims = sla_clocks_follow.on_claims
          AND (only_clocks IS NULL OR r.clock = ANY(only_clocks))
          AND (e.by_step OR status = ANY(r.stops_in)
               OR (r.while_status <> '{}' AND NOT status = ANY(r.while_status)));
    INSERT INTO sla_clocks (clock, id, start_seq, started_at, ended_at, due_at)
    SELECT r.clock, ledger_id, seq, occurred_at,
           CASE WHEN r.while_status = '{}' AND action = ANY(r.ends) THEN occurred_at END,
           CASE WHEN r.due = 'at_claim_file_deadline'
                THEN carrier_claim_file_deadline(ledger_id) END
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

-- A `due_at` in the details that is not a time is refused by the cast, with the event.
CREATE FUNCTION sla_clocks_follow_case_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM sla_clocks_follow(false, NEW.case_id, NEW.seq, NEW.occurred_at, NEW.action,
                              NEW.role, NEW.status_after,
                              (NEW.details ->> 'due_at')::timestamptz);
    RETURN NULL;
END $$;

CREATE FUNCTION sla_clocks_follow_claim_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- claim_events have no role: a carrier is the only actor
    PERFORM sla_clocks_follow(true, NEW.claim_id, NEW.seq, NEW.occurred_at, NEW.action,
                              NULL, NEW.status_after, NULL);
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
                                  e.status_after, (e.details ->> 'due_at')::timestamptz,
                                  new_clocks);
    END LOOP;
    FOR e IN SELECT * FROM claim_events ORDER BY claim_id, seq LOOP
        PERFORM sla_clocks_follow(true, e.claim_id, e.seq, e.occurred_at, e.action, NULL,
                                  e.status_after, NULL, new_clocks);
    END LOOP;
END $$;
