-- Work queues and case lists (issue 17; domain/queues.py, infra/case_queues.py): the
-- read model gains the columns the queues filter on, written by the ledger step with the
-- rest of the row (activities/ledger.py CaseSnapshot), and partial indexes over the open
-- cases in the queues' order (next deadline soonest first, no deadline last, then case id).

ALTER TABLE cases
    ADD COLUMN carrier          text,
    ADD COLUMN assigned_agent   text,
    ADD COLUMN escalation_level text    NOT NULL DEFAULT 'none',
    ADD COLUMN sla_breached_at  timestamptz,  -- the case's first SLA breach, if any
    ADD COLUMN disputed         boolean NOT NULL DEFAULT false;

-- The rows written before: from the view each ledger step stored (migration 010).
UPDATE cases SET
    carrier = case_view ->> 'carrier',
    assigned_agent = case_view ->> 'assigned_agent',
    escalation_level = coalesce(case_view -> 'escalation' ->> 'level', 'none'),
    sla_breached_at = (SELECT min((b ->> 'breached_at')::timestamptz)
                       FROM jsonb_array_elements(case_view -> 'sla_breaches') b),
    disputed = coalesce((case_view ->> 'disputed')::boolean, false)
WHERE case_view IS NOT NULL;

-- The queues' sort key: `coalesce(next_deadline, 'infinity')` puts cases with no deadline
-- last and lets one row comparison page through them (infra/case_queues.py). Every index
-- holds open cases only: closed ones leave them, so they stay the size of the work.
CREATE INDEX cases_open_by_deadline_idx ON cases
    ((coalesce(next_deadline, 'infinity'::timestamptz)), case_id) WHERE closed_at IS NULL;
CREATE INDEX cases_open_status_idx ON cases
    (status, (coalesce(next_deadline, 'infinity'::timestamptz)), case_id)
    WHERE closed_at IS NULL;
CREATE INDEX cases_open_assignee_idx ON cases
    (assigned_agent, (coalesce(next_deadline, 'infinity'::timestamptz)), case_id)
    WHERE closed_at IS NULL;
-- Escalated cases are few: one index in deadline order for every level (a queue of two
-- levels reads it in order instead of sorting), the level kept in it for index-only counts.
CREATE INDEX cases_open_escalated_idx ON cases
    ((coalesce(next_deadline, 'infinity'::timestamptz)), case_id) INCLUDE (escalation_level)
    WHERE closed_at IS NULL AND escalation_level <> 'none';
CREATE INDEX cases_open_breached_idx ON cases
    ((coalesce(next_deadline, 'infinity'::timestamptz)), case_id)
    WHERE closed_at IS NULL AND sla_breached_at IS NOT NULL;

-- Tracking numbers are personal data (docs/privacy.md): searched by a keyed hash
-- (HMAC-SHA256 under a key derived from the codec's master keys, infra/blind_index.py),
-- never stored here in the clear. One row per case and hash; deleted on erasure.
CREATE TABLE case_tracking_numbers (
    tracking_hash bytea NOT NULL,
    case_id       text  NOT NULL,
    PRIMARY KEY (tracking_hash, case_id)
);
CREATE INDEX case_tracking_numbers_case_idx ON case_tracking_numbers (case_id);

-- Things kept for a person, resolved by one, with who, in which role, when and why.
ALTER TABLE unmatched_scans
    ADD COLUMN resolution        text CHECK (resolution IN ('attached', 'dismissed')),
    ADD COLUMN attached_case_id  text,
    ADD COLUMN resolved_by       text,
    ADD COLUMN resolved_role     text,
    ADD COLUMN resolution_reason text,
    ADD CONSTRAINT unmatched_scans_resolved_whole CHECK (
        (resolution IS NULL) = (resolved_at IS NULL)
        AND (resolution IS NULL) = (resolved_by IS NULL)
        AND (resolution = 'attached') = (attached_case_id IS NOT NULL));
CREATE INDEX unmatched_scans_open_idx ON unmatched_scans (received_at, scan_id)
    WHERE resolved_at IS NULL;

ALTER TABLE refused_inputs
    ADD COLUMN handled_at     timestamptz,
    ADD COLUMN handled_by     text,
    ADD COLUMN handled_role   text,
    ADD COLUMN handled_reason text,
    ADD CONSTRAINT refused_inputs_handled_whole CHECK (
        (handled_at IS NULL) = (handled_by IS NULL)
        AND (handled_at IS NULL) = (handled_reason IS NULL));
CREATE INDEX refused_inputs_open_idx ON refused_inputs (received_at, id)
    WHERE handled_at IS NULL;

-- Internal notes on a case: staff free text, part of the case's audit trail (R23), kept
-- beside case_events rather than in it (the workflow numbers case_events; a note is no
-- step of the case and may be written on a closed one). Append-only but for redaction.
CREATE TABLE case_notes (
    case_id    text        NOT NULL,
    note_id    text        NOT NULL,  -- the writer's own id: a double submit writes once
    author     text        NOT NULL,
    role       text        NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now(),
    body       text        NOT NULL,
    redacted_at timestamptz,
    PRIMARY KEY (case_id, note_id)
);
CREATE INDEX case_notes_written_idx ON case_notes (case_id, written_at);

CREATE FUNCTION case_notes_only_redacted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND current_setting('aftersales.redacting', true) = 'on'
       AND (to_jsonb(NEW) - ARRAY['body', 'redacted_at'])
           = (to_jsonb(OLD) - ARRAY['body', 'redacted_at']) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'case_notes is append-only (R23): % refused', TG_OP;
END;
$$;
CREATE TRIGGER case_notes_append_only
    BEFORE UPDATE OR DELETE ON case_notes
    FOR EACH ROW EXECUTE FUNCTION case_notes_only_redacted();

-- Erasure and retention (migrations 009, 010) remove the notes' words too, the tracking
-- numbers' hashes, and what a scan attached to the case by a person kept (the reason they
-- wrote, its photos: its barcode names another case, so 009's redaction misses it).
CREATE OR REPLACE FUNCTION redact_free_text(case_ids text[], marker text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM redact_ledger_free_text(case_ids, marker);
    UPDATE cases SET case_view = redacted_case_view(case_view, marker)
    WHERE case_id = ANY(case_ids) AND case_view IS NOT NULL;
    PERFORM set_config('aftersales.redacting', 'on', true);
    UPDATE case_notes SET body = marker, redacted_at = now()
    WHERE case_id = ANY(case_ids) AND redacted_at IS NULL;
    PERFORM set_config('aftersales.redacting', 'off', true);
    DELETE FROM case_tracking_numbers WHERE case_id = ANY(case_ids);
    UPDATE unmatched_scans SET resolution_reason = marker,
                               payload = jsonb_set(payload, '{photos}', '[]'::jsonb)
    WHERE attached_case_id = ANY(case_ids)
      AND (resolution_reason <> marker OR payload -> 'photos' <> '[]'::jsonb);
END;
$$;
