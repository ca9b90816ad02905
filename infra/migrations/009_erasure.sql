-- Personal data past its time (docs/privacy.md): a customer's erasure request (GDPR
-- art. 17) and the retention rule remove free text and identity from the ledger, while
-- money records and the audit trail's structure (rows, actions, amounts, times) stay.

-- The per-case data keys of the payload codec (migration 008 creates this table; the same
-- shape here, so erasure works on a branch where 008 has not landed yet).
CREATE TABLE IF NOT EXISTS data_keys (
    scope         text PRIMARY KEY,
    master_key_id text        NOT NULL,
    wrapped_key   bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    destroyed_at  timestamptz
);

-- When a case's free text was removed (erasure or retention): the retention job skips it.
ALTER TABLE cases ADD COLUMN redacted_at timestamptz;

-- R23 stays: events are never deleted, and an update may only replace who (the customer's
-- id by a pseudonym), the free-text reason and the personal keys of details, inside a
-- transaction that declared it redacts. Any other change is refused, as before.
CREATE FUNCTION case_events_only_redacted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND current_setting('aftersales.redacting', true) = 'on'
       AND (to_jsonb(NEW) - ARRAY['actor', 'reason', 'details'])
           = (to_jsonb(OLD) - ARRAY['actor', 'reason', 'details']) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'case_events is append-only (R23): % refused', TG_OP;
END;
$$;
DROP TRIGGER case_events_append_only ON case_events;
CREATE TRIGGER case_events_append_only
    BEFORE UPDATE OR DELETE ON case_events
    FOR EACH ROW EXECUTE FUNCTION case_events_only_redacted();

-- The personal keys of an event's details: complaint words, an operator's request, a
-- message as it arrived (evidence notes, tracking numbers...), photo URLs (kept as a count).
CREATE FUNCTION redacted_details(details jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN details ?| ARRAY['complaint', 'request', 'message']
             OR jsonb_typeof(details -> 'photos') = 'array'
        THEN (details - ARRAY['complaint', 'request', 'message', 'photos'])
             || CASE WHEN jsonb_typeof(details -> 'photos') = 'array'
                     THEN jsonb_build_object('photos', jsonb_array_length(details -> 'photos'))
                     ELSE '{}'::jsonb END
             || '{"redacted": true}'::jsonb
        ELSE details
    END
$$;

-- Free text of these cases replaced by `marker`: reasons people wrote (customers, staff,
-- the arbiter; system, warehouse and carrier reasons are the rules' own words), personal
-- details, the read model's decision reason, message parameters, survey comments and
-- parcel photos. Idempotent.
CREATE FUNCTION redact_free_text(case_ids text[], marker text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('aftersales.redacting', 'on', true);
    UPDATE case_events SET
        reason = CASE WHEN role IN ('system', 'warehouse', 'carrier') OR reason IS NULL
                      THEN reason ELSE marker END,
        details = redacted_details(details)
    WHERE case_id = ANY(case_ids)
      AND ((role NOT IN ('system', 'warehouse', 'carrier') AND reason <> marker)
           OR redacted_details(details) <> details);
    PERFORM set_config('aftersales.redacting', 'off', true);
    UPDATE cases SET decision_reason = CASE WHEN decision_reason IS NOT NULL THEN marker END,
                     redacted_at = coalesce(redacted_at, now())
    WHERE case_id = ANY(case_ids);
    UPDATE notifications SET params = '{"redacted": true}'::jsonb
    WHERE case_id = ANY(case_ids) AND params <> '{"redacted": true}'::jsonb;
    UPDATE surveys SET comment = marker
    WHERE case_id = ANY(case_ids) AND comment <> '' AND comment <> marker;
    UPDATE scans SET photos = '[]'::jsonb WHERE case_id = ANY(case_ids) AND photos <> '[]'::jsonb;
    UPDATE unmatched_scans SET payload = jsonb_set(payload, '{photos}', '[]'::jsonb)
    WHERE barcode = ANY(case_ids) AND payload -> 'photos' <> '[]'::jsonb;
END;
$$;

-- The retention rule (docs/privacy.md): refused input is deleted after
-- `refused_inputs_for`; a case's free text is removed `free_text_for` after it closed.
CREATE FUNCTION apply_retention(
    refused_inputs_for interval, free_text_for interval,
    OUT refused_inputs_deleted bigint, OUT cases_redacted bigint
) LANGUAGE plpgsql AS $$
DECLARE
    expired text[];
BEGIN
    DELETE FROM refused_inputs WHERE received_at < now() - refused_inputs_for;
    GET DIAGNOSTICS refused_inputs_deleted = ROW_COUNT;
    SELECT coalesce(array_agg(case_id), '{}') INTO expired FROM cases
    WHERE redacted_at IS NULL AND closed_at < now() - free_text_for;
    PERFORM redact_free_text(expired, '[removed after retention]');
    cases_redacted := cardinality(expired);
END;
$$;
