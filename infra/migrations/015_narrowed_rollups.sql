-- R24 at scale, one filter at a time: a report narrowed by a date range and one of the
-- case's category, channel, kind or reason reads the rollups too. Each case's
-- contribution to a rollup is kept once unnarrowed (narrowed_by 'all') and once under each
-- of those four fields' values, so such a report reads at most the unfiltered report's
-- rows. Two or more of them, or a SKU or batch (on their index), still read the base
-- tables. docs/analytics.md, Scale, says what this costs each write.
--
-- A case's kind, reason, category, channel and opening moment come from its opening
-- request and every ledger step writes them back unchanged; should one change (a backfill,
-- a correction), the case's clocks, money movements and answers move between the narrowed
-- rows with it (report_count_case_details). Such a change is sound when no other
-- transaction writes that case's clocks, money or answers meanwhile (the move sees only
-- what has committed); report_rollups_rebuild() sums everything afresh otherwise.
-- For a move to count each of them exactly once, every rollup trigger now runs in its
-- statement, not at commit (014's were deferred): a ledger step appends its event, then
-- writes the case's row, as two statements, so an event is summed under the case's
-- fields as they were and then moved with the case's row. An event, clock or answer
-- written before its case's row exists is summed nowhere until that row is inserted,
-- which sums the case's whole past (the opening step writes its event first, in the
-- same transaction). A claim's clocks need their claim's row (migration 013 refuses a
-- claim event without it), which always comes after its case's.
--
-- Deploying it: the rebuild below runs in the migration's transaction while `cases`,
-- `sla_clocks`, `case_events` and `surveys` are locked (about 2.5 minutes at 1M cases on
-- the benchmark's machine): ledger steps wait, and their activities retry, meanwhile.

CREATE DOMAIN report_narrowing AS text
    CHECK (VALUE IN ('all', 'category', 'channel', 'kind', 'reason'));

-- The rows a case's contribution is summed in: unnarrowed, and under each field a report
-- may narrow by alone.
CREATE FUNCTION report_narrowings(c cases)
RETURNS TABLE (narrowed_by report_narrowing, narrowed_to text)
LANGUAGE sql IMMUTABLE AS $$
    VALUES ('all'::report_narrowing, ''), ('category', c.category), ('channel', c.channel),
           ('kind', c.kind), ('reason', c.reason)
$$;

-- A category narrows delivered units to the SKUs with a case in it (read off the units
-- rollup): a case always counts at least one unit.
ALTER TABLE cases ADD CONSTRAINT cases_quantity_positive CHECK (quantity >= 1);

-- The rollups of cases, clocks, money and answers, as 014's, keyed first by the narrowing;
-- report_rollups_rebuild() below fills them.
DROP TABLE report_reasons_daily, report_resolve_weekly, report_units_monthly,
           report_sla_daily, report_money_daily, report_satisfaction_daily;

CREATE TABLE report_reasons_daily (
    narrowed_by report_narrowing NOT NULL,
    narrowed_to text             NOT NULL,
    day         date             NOT NULL,
    reason      text             NOT NULL,
    root_cause  text,
    cases       bigint           NOT NULL,
    UNIQUE NULLS NOT DISTINCT (narrowed_by, narrowed_to, day, reason, root_cause)
);

CREATE TABLE report_resolve_weekly (
    narrowed_by report_narrowing NOT NULL,
    narrowed_to text             NOT NULL,
    week        date             NOT NULL,
    kind        text             NOT NULL,
    reason      text             NOT NULL,
    hours       integer          NOT NULL,
    cases       bigint           NOT NULL,
    PRIMARY KEY (narrowed_by, narrowed_to, week, kind, reason, hours)
);

CREATE TABLE report_units_monthly (
    narrowed_by report_narrowing NOT NULL,
    narrowed_to text             NOT NULL,
    month       date             NOT NULL,
    sku         text             NOT NULL,
    batch       text,
    kind        text             NOT NULL,
    reason      text             NOT NULL,
    units       bigint           NOT NULL,
    UNIQUE NULLS NOT DISTINCT (narrowed_by, narrowed_to, month, sku, batch, kind, reason)
);

CREATE TABLE report_sla_daily (
    narrowed_by report_narrowing NOT NULL,
    narrowed_to text             NOT NULL,
    clock       text             NOT NULL,
    day         date             NOT NULL,
    stopped     boolean          NOT NULL,
    late        boolean,  -- null: due after the policy's length, judged by `hours`
    hours       integer,  -- null: due at its own time, judged by `late`
    clocks      bigint           NOT NULL,
    CHECK ((late IS NULL) <> (hours IS NULL)),
    UNIQUE NULLS NOT DISTINCT (narrowed_by, narrowed_to, clock, day, stopped, late, hours)
);

CREATE TABLE report_money_daily (
    narrowed_by  report_narrowing NOT NULL,
    narrowed_to  text             NOT NULL,
    day          date             NOT NULL,
    action       text             NOT NULL,
    currency     text,
    movements    bigint           NOT NULL,
    amount_minor bigint           NOT NULL,
    UNIQUE NULLS NOT DISTINCT (narrowed_by, narrowed_to, day, action, currency)
);

CREATE TABLE report_satisfaction_daily (
    narrowed_by report_narrowing NOT NULL,
    narrowed_to text             NOT NULL,
    day         date             NOT NULL,
    week        date             NOT NULL,
    dimension   text             NOT NULL,
    level       text,
    answers     bigint           NOT NULL,
    UNIQUE NULLS NOT DISTINCT (narrowed_by, narrowed_to, day, week, dimension, level)
);

-- A case's own rows, `n` times (+1 to add it, -1 to take it out), under each narrowing.
-- PL/pgSQL, as the functions below: it keeps its statements' plans for the session, where
-- a SQL function with several statements plans them on every call (2.5 times the cost of
-- an opening's rollups in a measurement of 6,000 openings).
CREATE OR REPLACE FUNCTION report_count_case(c cases, n integer) RETURNS void
LANGUAGE plpgsql AS $$ BEGIN
    INSERT INTO report_reasons_daily AS r (narrowed_by, narrowed_to, day, reason, root_cause,
                                           cases)
    SELECT f.narrowed_by, f.narrowed_to, report_day(c.opened_at), c.reason, c.root_cause, n
    FROM report_narrowings(c) f ORDER BY 1, 2
    ON CONFLICT (narrowed_by, narrowed_to, day, reason, root_cause)
        DO UPDATE SET cases = r.cases + EXCLUDED.cases;
    INSERT INTO report_units_monthly AS r (narrowed_by, narrowed_to, month, sku, batch, kind,
                                           reason, units)
    SELECT f.narrowed_by, f.narrowed_to, report_month(c.opened_at), c.sku, c.batch, c.kind,
           c.reason, n * c.quantity
    FROM report_narrowings(c) f ORDER BY 1, 2
    ON CONFLICT (narrowed_by, narrowed_to, month, sku, batch, kind, reason)
        DO UPDATE SET units = r.units + EXCLUDED.units;
    INSERT INTO report_resolve_weekly AS r (narrowed_by, narrowed_to, week, kind, reason,
                                            hours, cases)
    SELECT f.narrowed_by, f.narrowed_to, report_week(c.opened_at), c.kind, c.reason,
           report_hours(c.closed_at - c.opened_at), n
    FROM report_narrowings(c) f WHERE c.closed_at IS NOT NULL ORDER BY 1, 2
    ON CONFLICT (narrowed_by, narrowed_to, week, kind, reason, hours)
        DO UPDATE SET cases = r.cases + EXCLUDED.cases;
END $$;

-- What a case's other rows sum to, `n` times, under the case's fields in `c`: its money
-- movements, its ended clocks (and its claims') and its survey's answers; money before
-- clocks as an event's triggers take them (by name: case_events_keep_report_money, then
-- case_events_keep_sla_clocks).
CREATE FUNCTION report_count_case_details(c cases, n integer) RETURNS void
LANGUAGE plpgsql AS $$ BEGIN
    INSERT INTO report_money_daily AS r (narrowed_by, narrowed_to, day, action, currency,
                                         movements, amount_minor)
    SELECT f.narrowed_by, f.narrowed_to, report_day(c.opened_at), e.action,
           e.details ->> 'currency', n * count(*), n * sum((e.details ->> 'amount_minor')::bigint)
    FROM case_events e, report_narrowings(c) f
    WHERE e.case_id = c.case_id AND e.details ? 'amount_minor'
    GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (narrowed_by, narrowed_to, day, action, currency) DO UPDATE
        SET movements = r.movements + EXCLUDED.movements,
            amount_minor = r.amount_minor + EXCLUDED.amount_minor;
    INSERT INTO report_sla_daily AS r (narrowed_by, narrowed_to, clock, day, stopped, late,
                                       hours, clocks)
    SELECT f.narrowed_by, f.narrowed_to, s.clock, report_day(c.opened_at), s.stopped, k.late,
           k.hours, n * count(*)
    -- by the clocks' key: every clock, the case's id and its claims' ids
    FROM sla_clocks s CROSS JOIN LATERAL report_sla_key(s) k, report_narrowings(c) f
    WHERE s.clock = ANY (ARRAY(SELECT clock FROM sla_clock_rules))
          AND s.id = ANY (ARRAY(SELECT c.case_id UNION ALL
                                SELECT claim_id FROM carrier_claims WHERE case_id = c.case_id))
          AND s.ended_at IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (narrowed_by, narrowed_to, clock, day, stopped, late, hours)
        DO UPDATE SET clocks = r.clocks + EXCLUDED.clocks;
    INSERT INTO report_satisfaction_daily AS r (narrowed_by, narrowed_to, day, week, dimension,
                                                level, answers)
    SELECT f.narrowed_by, f.narrowed_to, report_day(c.opened_at), report_week(s.answered_at),
           a.dimension, a.level, n * count(*)
    FROM surveys s, report_narrowings(c) f,
         LATERAL (VALUES ('attitude', s.attitude), ('expertise', s.expertise),
                         ('timeliness', s.timeliness),
                         ('promise_kept', s.promise_kept)) AS a(dimension, level)
    WHERE s.case_id = c.case_id AND s.answered_at IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (narrowed_by, narrowed_to, day, week, dimension, level)
        DO UPDATE SET answers = r.answers + EXCLUDED.answers;
END $$;

CREATE OR REPLACE FUNCTION report_rollups_follow_cases() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- An update takes the old contribution out and puts the new one in. The details
    -- first, in the order an event's triggers take them, then the case's own rows. Two writers moving two cases
    -- between the same rollup rows in opposite directions at once could still deadlock:
    -- PostgreSQL aborts one and its ledger step (an activity) is retried.
    IF TG_OP = 'INSERT' THEN
        PERFORM report_count_case_details(NEW, 1);
    ELSIF (OLD.opened_at, OLD.category, OLD.channel, OLD.kind, OLD.reason)
          IS DISTINCT FROM (NEW.opened_at, NEW.category, NEW.channel, NEW.kind, NEW.reason) THEN
        PERFORM report_count_case_details(OLD, -1);
        PERFORM report_count_case_details(NEW, 1);
    END IF;
    IF TG_OP = 'UPDATE' THEN
        PERFORM report_count_case(OLD, -1);
    END IF;
    PERFORM report_count_case(NEW, 1);
    RETURN NULL;
END $$;

DROP TRIGGER cases_keep_report_rollups_on_update ON cases;
CREATE TRIGGER cases_keep_report_rollups_on_update AFTER UPDATE ON cases
    FOR EACH ROW
    WHEN (OLD.opened_at IS DISTINCT FROM NEW.opened_at
          OR OLD.closed_at IS DISTINCT FROM NEW.closed_at
          OR OLD.kind IS DISTINCT FROM NEW.kind OR OLD.reason IS DISTINCT FROM NEW.reason
          OR OLD.category IS DISTINCT FROM NEW.category
          OR OLD.channel IS DISTINCT FROM NEW.channel
          OR OLD.root_cause IS DISTINCT FROM NEW.root_cause
          OR OLD.sku IS DISTINCT FROM NEW.sku OR OLD.batch IS DISTINCT FROM NEW.batch
          OR OLD.quantity IS DISTINCT FROM NEW.quantity)
    EXECUTE FUNCTION report_rollups_follow_cases();

-- One clock's change, under its case's fields now; a clock whose case has no row yet is
-- summed when that row is inserted.
CREATE OR REPLACE FUNCTION report_rollups_follow_sla_clocks() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    was sla_clocks := CASE WHEN TG_OP <> 'INSERT' THEN OLD END;
    now_is sla_clocks := CASE WHEN TG_OP <> 'DELETE' THEN NEW END;
BEGIN
    INSERT INTO report_sla_daily AS r (narrowed_by, narrowed_to, clock, day, stopped, late,
                                       hours, clocks)
    SELECT f.narrowed_by, f.narrowed_to, (d.s).clock, report_day(c.opened_at), (d.s).stopped,
           k.late, k.hours, sum(d.n)
    FROM (SELECT was, -1 WHERE was.ended_at IS NOT NULL
          UNION ALL
          SELECT now_is, 1 WHERE now_is.ended_at IS NOT NULL) d(s, n)
         CROSS JOIN LATERAL report_sla_key(d.s) k
         JOIN cases c ON c.case_id = k.case_id
         CROSS JOIN LATERAL report_narrowings(c) f
    GROUP BY 1, 2, 3, 4, 5, 6, 7 HAVING sum(d.n) <> 0 ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (narrowed_by, narrowed_to, clock, day, stopped, late, hours)
        DO UPDATE SET clocks = r.clocks + EXCLUDED.clocks;
    RETURN NULL;
END $$;

DROP TRIGGER sla_clocks_keep_report_rollups ON sla_clocks;
CREATE TRIGGER sla_clocks_keep_report_rollups AFTER INSERT OR UPDATE OR DELETE ON sla_clocks
    FOR EACH ROW EXECUTE FUNCTION report_rollups_follow_sla_clocks();

CREATE OR REPLACE FUNCTION report_rollups_follow_money() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_money_daily AS r (narrowed_by, narrowed_to, day, action, currency,
                                         movements, amount_minor)
    SELECT f.narrowed_by, f.narrowed_to, report_day(c.opened_at), NEW.action,
           NEW.details ->> 'currency', 1, (NEW.details ->> 'amount_minor')::bigint
    FROM cases c CROSS JOIN LATERAL report_narrowings(c) f
    WHERE c.case_id = NEW.case_id ORDER BY 1, 2
    ON CONFLICT (narrowed_by, narrowed_to, day, action, currency) DO UPDATE
        SET movements = r.movements + 1, amount_minor = r.amount_minor + EXCLUDED.amount_minor;
    RETURN NULL;
END $$;

DROP TRIGGER case_events_keep_report_money ON case_events;
CREATE TRIGGER case_events_keep_report_money AFTER INSERT ON case_events
    FOR EACH ROW WHEN (NEW.details ? 'amount_minor')
    EXECUTE FUNCTION report_rollups_follow_money();

CREATE OR REPLACE FUNCTION report_rollups_follow_surveys() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    was surveys := CASE WHEN TG_OP <> 'INSERT' THEN OLD END;
    now_is surveys := CASE WHEN TG_OP <> 'DELETE' THEN NEW END;
BEGIN
    INSERT INTO report_satisfaction_daily AS r (narrowed_by, narrowed_to, day, week, dimension,
                                                level, answers)
    SELECT f.narrowed_by, f.narrowed_to, report_day(c.opened_at), report_week(s.answered_at),
           a.dimension, a.level, sum(s.n)
    FROM (SELECT was.case_id, was.answered_at, was.attitude, was.expertise, was.timeliness,
                 was.promise_kept, -1
          WHERE was.answered_at IS NOT NULL
          UNION ALL
          SELECT now_is.case_id, now_is.answered_at, now_is.attitude, now_is.expertise,
                 now_is.timeliness, now_is.promise_kept, 1
          WHERE now_is.answered_at IS NOT NULL)
         s(case_id, answered_at, attitude, expertise, timeliness, promise_kept, n)
    JOIN cases c ON c.case_id = s.case_id
    CROSS JOIN LATERAL report_narrowings(c) f,
         LATERAL (VALUES ('attitude', s.attitude), ('expertise', s.expertise),
                         ('timeliness', s.timeliness),
                         ('promise_kept', s.promise_kept)) AS a(dimension, level)
    GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(s.n) <> 0 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (narrowed_by, narrowed_to, day, week, dimension, level)
        DO UPDATE SET answers = r.answers + EXCLUDED.answers;
    RETURN NULL;
END $$;

DROP TRIGGER surveys_keep_report_rollups ON surveys;
CREATE TRIGGER surveys_keep_report_rollups AFTER INSERT OR UPDATE OR DELETE ON surveys
    FOR EACH ROW EXECUTE FUNCTION report_rollups_follow_surveys();

-- Every rollup summed afresh from its base tables, in one pass each (014's, narrowed).
CREATE OR REPLACE FUNCTION report_rollups_rebuild() RETURNS void LANGUAGE sql AS $$
    TRUNCATE report_reasons_daily, report_resolve_weekly, report_units_monthly,
             report_delivered_monthly, report_sla_daily, report_money_daily,
             report_satisfaction_daily;
    INSERT INTO report_units_monthly (narrowed_by, narrowed_to, month, sku, batch, kind,
                                      reason, units)
    SELECT f.narrowed_by, f.narrowed_to, report_month(c.opened_at), c.sku, c.batch, c.kind,
           c.reason, sum(c.quantity)
    FROM cases c CROSS JOIN LATERAL report_narrowings(c) f GROUP BY 1, 2, 3, 4, 5, 6, 7;
    INSERT INTO report_delivered_monthly (month, sku, batch, units)
    SELECT date_trunc('month', day)::date, sku, batch, sum(units) FROM delivered_units
    GROUP BY 1, 2, 3;
    INSERT INTO report_reasons_daily (narrowed_by, narrowed_to, day, reason, root_cause, cases)
    SELECT f.narrowed_by, f.narrowed_to, report_day(c.opened_at), c.reason, c.root_cause,
           count(*)
    FROM cases c CROSS JOIN LATERAL report_narrowings(c) f GROUP BY 1, 2, 3, 4, 5;
    INSERT INTO report_resolve_weekly (narrowed_by, narrowed_to, week, kind, reason, hours,
                                       cases)
    SELECT f.narrowed_by, f.narrowed_to, report_week(c.opened_at), c.kind, c.reason,
           report_hours(c.closed_at - c.opened_at), count(*)
    FROM cases c CROSS JOIN LATERAL report_narrowings(c) f
    WHERE c.closed_at IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6;
    INSERT INTO report_sla_daily (narrowed_by, narrowed_to, clock, day, stopped, late, hours,
                                  clocks)
    SELECT f.narrowed_by, f.narrowed_to, s.clock, report_day(c.opened_at), s.stopped, k.late,
           k.hours, count(*)
    FROM sla_clocks s, LATERAL report_sla_key(s) k JOIN cases c ON c.case_id = k.case_id
         CROSS JOIN LATERAL report_narrowings(c) f
    WHERE s.ended_at IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7;
    INSERT INTO report_money_daily (narrowed_by, narrowed_to, day, action, currency,
                                    movements, amount_minor)
    SELECT f.narrowed_by, f.narrowed_to, report_day(c.opened_at), e.action,
           e.details ->> 'currency', count(*), sum((e.details ->> 'amount_minor')::bigint)
    FROM case_events e JOIN cases c ON c.case_id = e.case_id
         CROSS JOIN LATERAL report_narrowings(c) f
    WHERE e.details ? 'amount_minor' GROUP BY 1, 2, 3, 4, 5;
    INSERT INTO report_satisfaction_daily (narrowed_by, narrowed_to, day, week, dimension,
                                           level, answers)
    SELECT f.narrowed_by, f.narrowed_to, report_day(c.opened_at), report_week(s.answered_at),
           a.dimension, a.level, count(*)
    FROM surveys s JOIN cases c ON c.case_id = s.case_id
         CROSS JOIN LATERAL report_narrowings(c) f,
         LATERAL (VALUES ('attitude', s.attitude), ('expertise', s.expertise),
                         ('timeliness', s.timeliness),
                         ('promise_kept', s.promise_kept)) AS a(dimension, level)
    WHERE s.answered_at IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6;
$$;
SELECT report_rollups_rebuild();
