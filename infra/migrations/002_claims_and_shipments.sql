-- R15: claims filed with carriers (one per damage case), with their own append-only
-- history, and R7/R8/R22: parcels the warehouse sends out for a case.

CREATE TABLE carrier_claims (
    claim_id          text PRIMARY KEY,
    case_id           text        NOT NULL,
    carrier           text        NOT NULL,
    status            text        NOT NULL,
    currency          char(3)     NOT NULL,
    claimed_minor     bigint      NOT NULL CHECK (claimed_minor >= 0),
    recovered_minor   bigint      NOT NULL DEFAULT 0 CHECK (recovered_minor >= 0),
    file_deadline     timestamptz NOT NULL,
    filed_at          timestamptz,
    carrier_reference text,
    chases            integer     NOT NULL DEFAULT 0,
    escalated_at      timestamptz,
    closed_at         timestamptz,
    last_seq          integer     NOT NULL,
    updated_at        timestamptz NOT NULL
);
CREATE INDEX carrier_claims_case_idx ON carrier_claims (case_id);

CREATE TABLE claim_events (
    claim_id    text        NOT NULL,
    seq         integer     NOT NULL CHECK (seq > 0),
    occurred_at timestamptz NOT NULL,
    action      text        NOT NULL,
    rule_id     text,
    reason      text,
    status_after text       NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (claim_id, seq)
);
CREATE TRIGGER claim_events_append_only
    BEFORE UPDATE OR DELETE ON claim_events
    FOR EACH ROW EXECUTE FUNCTION case_events_are_append_only();

CREATE TABLE shipments (
    idempotency_key text PRIMARY KEY,
    case_id         text        NOT NULL,
    sku             text        NOT NULL,
    quantity        integer     NOT NULL CHECK (quantity > 0),
    purpose         text        NOT NULL,
    reference       text,
    requested_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX shipments_case_idx ON shipments (case_id);

-- R7, R8 (for R24's analytics): why the wrong item or the damage happened.
ALTER TABLE cases ADD COLUMN root_cause text;
