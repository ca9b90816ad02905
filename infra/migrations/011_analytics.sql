-- R24: after-sales analytics. A case's batch (lot), the units delivered (the return
-- rate's denominator), and the batch alarm's flags.
ALTER TABLE cases ADD COLUMN batch text;
-- The units the case is about (a return of 3 pieces counts 3 against the batch).
ALTER TABLE cases ADD COLUMN quantity integer NOT NULL DEFAULT 1;
CREATE INDEX cases_sku_batch_idx ON cases (sku, batch);

-- Delivered units as per day x SKU x batch totals, reported by the shop's backend. One
-- row per (sku, batch, day): a report sent again replaces the total with the same number
-- (changes nothing), a corrected one replaces it; the row count grows with days x batches
-- on sale, not with order lines, so the denominator of any range is a small sum.
CREATE TABLE delivered_units (
    sku         text        NOT NULL,
    batch       text        NOT NULL,
    day         date        NOT NULL,
    units       bigint      NOT NULL CHECK (units >= 0),
    reported_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sku, batch, day)
);
CREATE INDEX delivered_units_day_idx ON delivered_units (day);

-- A batch the alarm flagged: once per (sku, batch), whatever how often the alarm runs.
CREATE TABLE batch_flags (
    sku           text             NOT NULL,
    batch         text             NOT NULL,
    returns       bigint           NOT NULL,
    units         bigint           NOT NULL,
    baseline_rate double precision NOT NULL,
    p_value       double precision NOT NULL,
    flagged_at    timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (sku, batch)
);

-- The alarm's own ledger: one event per flag, written in the same statement as the flag;
-- append-only like case_events (R23).
CREATE TABLE batch_events (
    id          bigserial   PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    action      text        NOT NULL,
    sku         text        NOT NULL,
    batch       text        NOT NULL,
    details     jsonb       NOT NULL
);
CREATE TRIGGER batch_events_append_only
    BEFORE UPDATE OR DELETE ON batch_events
    FOR EACH ROW EXECUTE FUNCTION case_events_are_append_only();
