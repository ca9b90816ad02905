-- The case ledger (R23): an append-only event log, the read model derived from it,
-- money movements with one row per idempotency key (R21), and every scan (R26).

CREATE TABLE cases (
    case_id            text PRIMARY KEY,
    kind               text        NOT NULL,
    reason             text        NOT NULL,
    channel            text        NOT NULL,
    order_id           text        NOT NULL,
    line_id            text        NOT NULL,
    request_id         text        NOT NULL,
    sku                text        NOT NULL,
    category           text        NOT NULL,
    customer_id        text        NOT NULL,
    status             text        NOT NULL,
    currency           char(3)     NOT NULL,
    paid_minor         bigint      NOT NULL CHECK (paid_minor >= 0),
    refund_limit_minor bigint      NOT NULL CHECK (refund_limit_minor >= 0),
    refunded_minor     bigint      NOT NULL CHECK (refunded_minor >= 0),
    policy_version     text        NOT NULL,
    waiting_for        text        NOT NULL,
    next_deadline      timestamptz,
    decision_reason    text,
    opened_at          timestamptz NOT NULL,
    closed_at          timestamptz,
    last_seq           integer     NOT NULL,
    updated_at         timestamptz NOT NULL,
    CHECK (refunded_minor <= refund_limit_minor)
);
CREATE INDEX cases_status_idx ON cases (status);
CREATE INDEX cases_order_idx ON cases (order_id, line_id);

CREATE TABLE case_events (
    case_id      text        NOT NULL,
    seq          integer     NOT NULL CHECK (seq > 0),
    occurred_at  timestamptz NOT NULL,
    actor        text        NOT NULL,
    role         text        NOT NULL,
    action       text        NOT NULL,
    rule_id      text,
    reason       text,
    status_after text        NOT NULL,
    details      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (case_id, seq)
);

CREATE FUNCTION case_events_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'case_events is append-only (R23): % refused', TG_OP;
END;
$$;
CREATE TRIGGER case_events_append_only
    BEFORE UPDATE OR DELETE ON case_events
    FOR EACH ROW EXECUTE FUNCTION case_events_are_append_only();

CREATE TABLE money_movements (
    idempotency_key    text PRIMARY KEY,
    case_id            text        NOT NULL,
    kind               text        NOT NULL CHECK (kind IN ('refund')),
    amount_minor       bigint      NOT NULL CHECK (amount_minor > 0),
    currency           char(3)     NOT NULL,
    status             text        NOT NULL CHECK (status IN ('pending', 'succeeded')),
    provider_reference text,
    requested_at       timestamptz NOT NULL DEFAULT now(),
    settled_at         timestamptz
);
CREATE INDEX money_movements_case_idx ON money_movements (case_id);

CREATE TABLE scans (
    scan_id     text PRIMARY KEY,
    case_id     text        NOT NULL,
    event       text        NOT NULL,
    station     text        NOT NULL,
    grade       text,
    photos      jsonb       NOT NULL DEFAULT '[]'::jsonb,
    scanned_at  timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX scans_case_idx ON scans (case_id);

-- R26: a scan that matches no open case is kept for a person, never dropped.
CREATE TABLE unmatched_scans (
    scan_id     text PRIMARY KEY,
    barcode     text        NOT NULL,
    payload     jsonb       NOT NULL,
    problem     text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz
);

-- Input refused at an edge (bad JSON, a field out of range): kept with the reason.
CREATE TABLE refused_inputs (
    id          bigserial PRIMARY KEY,
    source      text        NOT NULL,
    operation   text        NOT NULL,
    payload     text        NOT NULL,
    errors      jsonb       NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE notifications (
    idempotency_key text PRIMARY KEY,
    case_id         text        NOT NULL,
    customer_id     text        NOT NULL,
    template        text        NOT NULL,
    params          jsonb       NOT NULL,
    due_at          timestamptz NOT NULL,
    sent_at         timestamptz
);
CREATE INDEX notifications_case_idx ON notifications (case_id);
