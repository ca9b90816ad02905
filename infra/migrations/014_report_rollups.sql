-- R24 at scale: the report's sections over a date range read per-day (time to resolve:
-- per-week) rollups instead of scanning 1M cases, 2M events and 1.3M SLA clocks. Each
-- rollup is kept by a trigger in the writer's transaction, so it is exactly as current
-- as the rows it sums; docs/analytics.md says why and what each costs.
--
-- The rollups carry no case field but the opening day (and the section's own keys): a
-- report filtered by category, SKU, batch, channel, kind or reason reads the base tables
-- (SKU and batch on their index). Counts only ever change by a row's own delta (-1 for
-- its old contribution, +1 for its new one), applied in one statement in key order so two
-- writers lock rollup rows in the same order. A row summed to 0 stays, read as absent.

CREATE FUNCTION report_day(at timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE AS $$ SELECT (at AT TIME ZONE 'UTC')::date $$;

-- Monday of the UTC week, as the satisfaction trend's and time to resolve's weeks.
CREATE FUNCTION report_week(at timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE AS $$ SELECT date_trunc('week', at AT TIME ZONE 'UTC')::date $$;

-- A duration in whole hours, rounded up: a deadline of k hours is met exactly when this
-- is at most k (ceil(d) <= k <=> d <= k for a whole k), and a percentile of these is the
-- exact one rounded up (rounding up keeps the order).
CREATE FUNCTION report_hours(span interval) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT ceil(extract(epoch FROM span) / 3600)::integer $$;

-- Reasons and root causes (R7, R8): cases per opening day, reason and root cause.
CREATE TABLE report_reasons_daily (
    day        date   NOT NULL,
    reason     text   NOT NULL,
    root_cause text,
    cases      bigint NOT NULL,
    UNIQUE NULLS NOT DISTINCT (day, reason, root_cause)
);

-- Time to resolve: closed cases per opening week, kind, reason and whole hours to close.
-- Per week, not day: a day holds too few cases per hour for a rollup to be smaller than
-- the cases; a range's partial weeks are read from the cases.
CREATE TABLE report_resolve_weekly (
    week   date    NOT NULL,
    kind   text    NOT NULL,
    reason text    NOT NULL,
    hours  integer NOT NULL,
    cases  bigint  NOT NULL,
    PRIMARY KEY (week, kind, reason, hours)
);

-- Return rates: units per opening month, SKU, batch, kind and reason (every case: which
-- count as returned is the domain's RETURNED_KINDS and RETURNED_REASONS, applied when
-- read). Per month: a day holds about one case per SKU and batch. A range's partial
-- months are read from the cases.
CREATE TABLE report_units_monthly (
    month  date   NOT NULL,
    sku    text   NOT NULL,
    batch  text,
    kind   text   NOT NULL,
    reason text   NOT NULL,
    units  bigint NOT NULL,
    UNIQUE NULLS NOT DISTINCT (month, sku, batch, kind, reason)
);

CREATE FUNCTION report_month(at timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE AS $$ SELECT date_trunc('month', at AT TIME ZONE 'UTC')::date $$;

-- A case's contribution to the three rollups, `n` times (+1 to add it, -1 to take it out).
CREATE FUNCTION report_count_case(c cases, n integer) RETURNS void LANGUAGE sql AS $$
    INSERT INTO report_reasons_daily AS r (day, reason, root_cause, cases)
    VALUES (report_day(c.opened_at), c.reason, c.root_cause, n)
    ON CONFLICT (day, reason, root_cause) DO UPDATE SET cases = r.cases + EXCLUDED.cases;
    INSERT INTO report_units_monthly AS r (month, sku, batch, kind, reason, units)
    VALUES (report_month(c.opened_at), c.sku, c.batch, c.kind, c.reason, n * c.quantity)
    ON CONFLICT (month, sku, batch, kind, reason) DO UPDATE SET units = r.units + EXCLUDED.units;
    INSERT INTO report_resolve_weekly AS r (week, kind, reason, hours, cases)
    SELECT report_week(c.opened_at), c.kind, c.reason,
           report_hours(c.closed_at - c.opened_at), n
    WHERE c.closed_at IS NOT NULL
    ON CONFLICT (week, kind, reason, hours) DO UPDATE SET cases = r.cases + EXCLUDED.cases;
$$;

CREATE FUNCTION report_rollups_follow_cases() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- An update takes the old contribution out and puts the new one in. Two writers
    -- moving two cases between the same rollup rows in opposite directions at once could
    -- deadlock: PostgreSQL aborts one and its ledger step (an activity) is retried.
    IF TG_OP = 'UPDATE' THEN
        PERFORM report_count_case(OLD, -1);
    END IF;
    PERFORM report_count_case(NEW, 1);
    RETURN NULL;
END $$;

-- A case's row is never deleted (erasure redacts it): inserts and updates only.
CREATE TRIGGER cases_keep_report_rollups_on_insert AFTER INSERT ON cases
    FOR EACH ROW EXECUTE FUNCTION report_rollups_follow_cases();
-- Each ledger step rewrites the case's row: only a change the rollups sum fires.
CREATE TRIGGER cases_keep_report_rollups_on_update AFTER UPDATE ON cases
    FOR EACH ROW
    WHEN (OLD.opened_at IS DISTINCT FROM NEW.opened_at
          OR OLD.closed_at IS DISTINCT FROM NEW.closed_at
          OR OLD.kind IS DISTINCT FROM NEW.kind OR OLD.reason IS DISTINCT FROM NEW.reason
          OR OLD.root_cause IS DISTINCT FROM NEW.root_cause
          OR OLD.sku IS DISTINCT FROM NEW.sku OR OLD.batch IS DISTINCT FROM NEW.batch
          OR OLD.quantity IS DISTINCT FROM NEW.quantity)
    EXECUTE FUNCTION report_rollups_follow_cases();

-- Delivered units per month, SKU and batch: the rates' denominator over a range of whole
-- months, and the batch alarm's over all time. A total sent again or corrected moves the
-- month by its difference.
CREATE TABLE report_delivered_monthly (
    month date   NOT NULL,
    sku   text   NOT NULL,
    batch text   NOT NULL,
    units bigint NOT NULL,
    PRIMARY KEY (month, sku, batch)
);

CREATE FUNCTION report_rollups_follow_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_delivered_monthly AS r (month, sku, batch, units)
    SELECT d.month, d.sku, d.batch, sum(d.n)
    FROM (SELECT date_trunc('month', OLD.day)::date, OLD.sku, OLD.batch, -OLD.units
          WHERE TG_OP = 'UPDATE'
          UNION ALL
          SELECT date_trunc('month', NEW.day)::date, NEW.sku, NEW.batch, NEW.units)
         d(month, sku, batch, n)
    -- a total of 0 units still makes its month's row: the batch was on sale
    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (month, sku, batch) DO UPDATE SET units = r.units + EXCLUDED.units;
    RETURN NULL;
END $$;

-- Totals are inserted or corrected, never deleted.
CREATE TRIGGER delivered_units_keep_report_rollups AFTER INSERT OR UPDATE ON delivered_units
    FOR EACH ROW EXECUTE FUNCTION report_rollups_follow_deliveries();

-- The rows below are summed per the case's opening day, so their triggers run at commit
-- (deferred): a ledger step appends its event before it writes the case's row.

-- SLA compliance: ended clocks per clock, the case's opening day and how each is judged
-- (ClockRule in domain/analytics.py, migration 013). A clock with its own due time (R14's
-- slot, R15's filing deadline) is late or not once it ends, whatever the policy says:
-- kept as `late`. One due its policy length after the start is kept by the whole hours
-- it took beyond its grace, `hours`: late exactly when that exceeds the length's whole
-- hours (ceil(d - g) > k <=> d > k + g). `stopped`: ended without its step, judged only
-- when late. Keyed by the clock's name, so clock rules added later are summed as they
-- are. Running clocks are few and read from sla_clocks (their partial index).
CREATE TABLE report_sla_daily (
    clock   text    NOT NULL,
    day     date    NOT NULL,
    stopped boolean NOT NULL,
    late    boolean,  -- null: due after the policy's length, judged by `hours`
    hours   integer,  -- null: due at its own time, judged by `late`
    clocks  bigint  NOT NULL,
    CHECK ((late IS NULL) <> (hours IS NULL)),
    UNIQUE NULLS NOT DISTINCT (clock, day, stopped, late, hours)
);

-- How long after its due time a clock's step still counts as on time (ClockRule.grace;
-- a test holds the two equal).
ALTER TABLE sla_clock_rules ADD COLUMN grace interval NOT NULL DEFAULT '0 seconds';
UPDATE sla_clock_rules SET grace = '1 minute' WHERE clock = 'follow_up_interval';

-- An ended clock's case, and its rollup key but the day: the case of a claim's clock is
-- the claim's.
CREATE FUNCTION report_sla_key(
    s sla_clocks, OUT case_id text, OUT late boolean, OUT hours integer
) LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN r.on_claims
                THEN (SELECT cc.case_id FROM carrier_claims cc WHERE cc.claim_id = s.id)
                ELSE s.id END,
           CASE WHEN s.due_at IS NOT NULL THEN s.ended_at > s.due_at + r.grace END,
           CASE WHEN s.due_at IS NULL THEN report_hours(s.ended_at - s.started_at - r.grace) END
    FROM sla_clock_rules r WHERE r.clock = s.clock
$$;

CREATE FUNCTION report_rollups_follow_sla_clocks() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was sla_clocks := CASE WHEN TG_OP <> 'INSERT' THEN OLD END;
    now_is sla_clocks := CASE WHEN TG_OP <> 'DELETE' THEN NEW END;
BEGIN
    INSERT INTO report_sla_daily AS r (clock, day, stopped, late, hours, clocks)
    SELECT (d.s).clock, report_day(c.opened_at), (d.s).stopped, k.late, k.hours, sum(d.n)
    FROM (SELECT was, -1 WHERE was.ended_at IS NOT NULL
          UNION ALL
          SELECT now_is, 1 WHERE now_is.ended_at IS NOT NULL) d(s, n)
         CROSS JOIN LATERAL report_sla_key(d.s) k
         JOIN cases c ON c.case_id = k.case_id
    GROUP BY 1, 2, 3, 4, 5 HAVING sum(d.n) <> 0 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (clock, day, stopped, late, hours) DO UPDATE SET clocks = r.clocks + EXCLUDED.clocks;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER sla_clocks_keep_report_rollups
    AFTER INSERT OR UPDATE OR DELETE ON sla_clocks
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION report_rollups_follow_sla_clocks();

-- Money: movements and amount per the case's opening day, ledger action and currency.
-- The ledger is append-only (erasure redacts texts, never amounts): inserts only.
CREATE TABLE report_money_daily (
    day          date   NOT NULL,
    action       text   NOT NULL,
    currency     text,
    movements    bigint NOT NULL,
    amount_minor bigint NOT NULL,
    UNIQUE NULLS NOT DISTINCT (day, action, currency)
);

CREATE FUNCTION report_rollups_follow_money() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_money_daily AS r (day, action, currency, movements, amount_minor)
    SELECT report_day(c.opened_at), NEW.action, NEW.details ->> 'currency', 1,
           (NEW.details ->> 'amount_minor')::bigint
    FROM cases c WHERE c.case_id = NEW.case_id
    ON CONFLICT (day, action, currency) DO UPDATE
        SET movements = r.movements + 1, amount_minor = r.amount_minor + EXCLUDED.amount_minor;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER case_events_keep_report_money AFTER INSERT ON case_events
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.details ? 'amount_minor')
    EXECUTE FUNCTION report_rollups_follow_money();

-- Satisfaction (R25): answers per the case's opening day, the answer's week, dimension
-- and level.
CREATE TABLE report_satisfaction_daily (
    day       date   NOT NULL,
    week      date   NOT NULL,
    dimension text   NOT NULL,
    level     text,
    answers   bigint NOT NULL,
    UNIQUE NULLS NOT DISTINCT (day, week, dimension, level)
);

CREATE FUNCTION report_rollups_follow_surveys() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was surveys := CASE WHEN TG_OP <> 'INSERT' THEN OLD END;
    now_is surveys := CASE WHEN TG_OP <> 'DELETE' THEN NEW END;
BEGIN
    INSERT INTO report_satisfaction_daily AS r (day, week, dimension, level, answers)
    SELECT report_day(c.opened_at), report_week(s.answered_at), a.dimension, a.level, sum(s.n)
    FROM (SELECT was.case_id, was.answered_at, was.attitude, was.expertise, was.timeliness,
                 was.promise_kept, -1
          WHERE was.answered_at IS NOT NULL
          UNION ALL
          SELECT now_is.case_id, now_is.answered_at, now_is.attitude, now_is.expertise,
                 now_is.timeliness, now_is.promise_kept, 1
          WHERE now_is.answered_at IS NOT NULL)
         s(case_id, answered_at, attitude, expertise, timeliness, promise_kept, n)
    JOIN cases c ON c.case_id = s.case_id,
         LATERAL (VALUES ('attitude', s.attitude), ('expertise', s.expertise),
                         ('timeliness', s.timeliness),
                         ('promise_kept', s.promise_kept)) AS a(dimension, level)
    GROUP BY 1, 2, 3, 4 HAVING sum(s.n) <> 0 ORDER BY 1, 2, 3, 4
    ON CONFLICT (day, week, dimension, level) DO UPDATE SET answers = r.answers + EXCLUDED.answers;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER surveys_keep_report_rollups AFTER INSERT OR UPDATE OR DELETE
    ON surveys DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION report_rollups_follow_surveys();

-- Every rollup summed afresh from its base table, in one pass each: this migration fills
-- them from what was written before it, and a bulk load (the scale benchmark's) writes
-- with the triggers off and calls it after (row by row in one long transaction, each
-- rollup row would keep a dead version per row written until the commit).
CREATE FUNCTION report_rollups_rebuild() RETURNS void LANGUAGE sql AS $$
    TRUNCATE report_reasons_daily, report_resolve_weekly, report_units_monthly,
             report_delivered_monthly, report_sla_daily, report_money_daily,
             report_satisfaction_daily;
    INSERT INTO report_units_monthly (month, sku, batch, kind, reason, units)
    SELECT report_month(opened_at), sku, batch, kind, reason, sum(quantity)
    FROM cases GROUP BY 1, 2, 3, 4, 5;
    INSERT INTO report_delivered_monthly (month, sku, batch, units)
    SELECT date_trunc('month', day)::date, sku, batch, sum(units) FROM delivered_units
    GROUP BY 1, 2, 3;
    INSERT INTO report_reasons_daily (day, reason, root_cause, cases)
    SELECT report_day(opened_at), reason, root_cause, count(*) FROM cases GROUP BY 1, 2, 3;
    INSERT INTO report_resolve_weekly (week, kind, reason, hours, cases)
    SELECT report_week(opened_at), kind, reason, report_hours(closed_at - opened_at), count(*)
    FROM cases WHERE closed_at IS NOT NULL GROUP BY 1, 2, 3, 4;
    INSERT INTO report_sla_daily (clock, day, stopped, late, hours, clocks)
    SELECT s.clock, report_day(c.opened_at), s.stopped, k.late, k.hours, count(*)
    FROM sla_clocks s, LATERAL report_sla_key(s) k JOIN cases c ON c.case_id = k.case_id
    WHERE s.ended_at IS NOT NULL GROUP BY 1, 2, 3, 4, 5;
    INSERT INTO report_money_daily (day, action, currency, movements, amount_minor)
    SELECT report_day(c.opened_at), e.action, e.details ->> 'currency', count(*),
           sum((e.details ->> 'amount_minor')::bigint)
    FROM case_events e JOIN cases c ON c.case_id = e.case_id
    WHERE e.details ? 'amount_minor' GROUP BY 1, 2, 3;
    INSERT INTO report_satisfaction_daily (day, week, dimension, level, answers)
    SELECT report_day(c.opened_at), report_week(s.answered_at), a.dimension, a.level, count(*)
    FROM surveys s JOIN cases c ON c.case_id = s.case_id,
         LATERAL (VALUES ('attitude', s.attitude), ('expertise', s.expertise),
                         ('timeliness', s.timeliness),
                         ('promise_kept', s.promise_kept)) AS a(dimension, level)
    WHERE s.answered_at IS NOT NULL GROUP BY 1, 2, 3, 4;
$$;
SELECT report_rollups_rebuild();

-- The newest breaches of a clock, walked from the newest start.
CREATE INDEX sla_clocks_newest_idx ON sla_clocks (clock, started_at DESC);
