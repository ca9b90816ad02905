-- The read model answers `GET /cases/{id}`: each ledger step stores the case's working
-- view (domain/view.py CaseView) beside the columns, so a case reads from PostgreSQL
-- after Temporal's retention and with no worker running. NULL for a row written before
-- this column existed; the API then asks the workflow.
ALTER TABLE cases ADD COLUMN case_view jsonb;
CREATE INDEX cases_opened_idx ON cases (opened_at DESC);

-- The view's free text written by people: the decision's reason (R20), the escalation's
-- reason, the dispute's words and the ruling's reason. The inspection's reason and the SLA
-- breaches are the rules' own words and stay, as in case_events.
CREATE FUNCTION redacted_case_view(case_view jsonb, marker text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN case_view IS NULL THEN NULL ELSE
        case_view
        || CASE WHEN case_view ->> 'decision_reason' IS NOT NULL
                THEN jsonb_build_object('decision_reason', marker) ELSE '{}'::jsonb END
        || CASE WHEN case_view -> 'escalation' ->> 'reason' IS NOT NULL
                THEN jsonb_build_object('escalation', jsonb_set(case_view -> 'escalation',
                                                                '{reason}', to_jsonb(marker)))
                ELSE '{}'::jsonb END
        || CASE WHEN jsonb_typeof(case_view -> 'dispute') = 'object'
                THEN jsonb_build_object('dispute', jsonb_build_object('reason', marker))
                ELSE '{}'::jsonb END
        || CASE WHEN jsonb_typeof(case_view -> 'ruling') = 'object'
                THEN jsonb_build_object('ruling', jsonb_set(case_view -> 'ruling',
                                                            '{reason}', to_jsonb(marker)))
                ELSE '{}'::jsonb END
    END
$$;

-- Erasure and retention both call redact_free_text (migration 009): the ledger's
-- redaction keeps its name's old body, and the view is redacted with it.
ALTER FUNCTION redact_free_text(text[], text) RENAME TO redact_ledger_free_text;
CREATE FUNCTION redact_free_text(case_ids text[], marker text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM redact_ledger_free_text(case_ids, marker);
    UPDATE cases SET case_view = redacted_case_view(case_view, marker)
    WHERE case_id = ANY(case_ids) AND case_view IS NOT NULL;
END;
$$;
