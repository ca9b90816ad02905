-- The schema of aftersales, whole. Read top to bottom: the types, the tables (by concern,
-- each column saying why where its name does not), the rows the schema itself needs, the
-- indexes, then the functions and the triggers that call them.
--
-- It folds the migrations written before anything was deployed (issue 18; git history
-- has them, and the test that compared this file's catalog with theirs). A change from
-- here on is a new migration, 002_..., applied after this one by infra/database.py
-- (docs/architecture.md, Schema). Rules are named as in ../shared/domain.md (R1..R27);
-- docs/analytics.md, privacy.md, sealing.md and desk.md say more about their parts.


-- ============================================================================ types

-- The fields a report may narrow the analytics rollups by, one at a time ('all': not
-- narrowed). domain/analytics.py names the same set.
CREATE DOMAIN report_narrowing AS text
    CHECK (VALUE IN ('all', 'category', 'channel', 'kind', 'reason'));


-- ============================================================================ tables

-- ---------------------------------------------------------------- the case ledger (R23)

-- The read model: one row per case, rewritten by every ledger step (activities/ledger.py)
-- in the transaction that appends its case_events row, so it answers `GET /cases/{id}`,
-- the work queues and the reports after Temporal's retention and with no worker running.
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
    -- R21: money back never exceeds what the line was paid (the limit is the case's).
    refund_limit_minor bigint      NOT NULL CHECK (refund_limit_minor >= 0),
    refunded_minor     bigint      NOT NULL CHECK (refunded_minor >= 0),
    policy_version     text        NOT NULL,
    waiting_for        text        NOT NULL,
    next_deadline      timestamptz,
    decision_reason    text,        -- R20: free text, redacted on erasure and retention
    opened_at          timestamptz NOT NULL,
    closed_at          timestamptz,
    last_seq           integer     NOT NULL,  -- the case_events seq this row reflects
    updated_at         timestamptz NOT NULL,
    -- R7, R8 (for R24's analytics): why the wrong item or the damage happened.
    root_cause         text,
    -- When the case's free text was removed (erasure or retention): retention skips it.
    redacted_at        timestamptz,
    -- The case's working view (domain/view.py CaseView) as the last ledger step saw it.
    case_view          jsonb,
    -- R24: the batch (lot) the unit came from, and the units the case is about (a return
    -- of 3 pieces counts 3 against its batch; at least one, so a category narrows the
    -- delivered units to the SKUs with a case in it).
    batch              text,
    quantity           integer     NOT NULL DEFAULT 1,
    -- What the work queues filter on (domain/queues.py, infra/case_queues.py).
    carrier            text,
    assigned_agent     text,
    escalation_level   text        NOT NULL DEFAULT 'none',
    sla_breached_at    timestamptz,  -- the case's first SLA breach, if any
    disputed           boolean     NOT NULL DEFAULT false,
    CHECK (refunded_minor <= refund_limit_minor),
    CONSTRAINT cases_quantity_positive CHECK (quantity >= 1)
);

-- The append-only event log of each case (R23): every step, who took it, in which role,
-- under which rule. Never deleted; an update may only redact (case_events_only_redacted).
CREATE TABLE case_events (
    case_id      text        NOT NULL,
    seq          integer     NOT NULL CHECK (seq > 0),
    occurred_at  timestamptz NOT NULL,
    actor        text        NOT NULL,  -- a pseudonym once the customer's data is erased
    role         text        NOT NULL,
    action       text        NOT NULL,
    rule_id      text,
    reason       text,
    status_after text        NOT NULL,
    details      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (case_id, seq)
);

-- R2: every request to open a case, written before its workflow starts, so a request is
-- never lost (Temporal unreachable: the retry finds it here and starts the case) and a
-- request id reused with other details is refused without asking the workflow.
CREATE TABLE case_requests (
    case_id     text PRIMARY KEY,
    request_id  text        NOT NULL,
    request     jsonb       NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    -- R2: an order line and request id open one case, whatever kind the request asks
    -- for (case_requests_one_case_per_request); the columns follow the stored request.
    order_id    text        NOT NULL GENERATED ALWAYS AS (request->>'order_id') STORED,
    line_id     text        NOT NULL GENERATED ALWAYS AS (request->>'line_id') STORED,
    -- True would mark a second case opened for one request before R2 held across kinds,
    -- left out of the unique index; nothing was deployed then, so no row has it.
    opened_before_r2_across_kinds boolean NOT NULL DEFAULT false
);

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

-- Tracking numbers are personal data (docs/privacy.md): searched by a keyed hash
-- (HMAC-SHA256 under a key derived from the codec's master keys, infra/blind_index.py),
-- never stored here in the clear. One row per case and hash; deleted on erasure.
CREATE TABLE case_tracking_numbers (
    tracking_hash bytea NOT NULL,
    case_id       text  NOT NULL,
    PRIMARY KEY (tracking_hash, case_id)
);

-- ---------------------------------------------------------------- money (R21, R22)

-- Refunds and charges (R22: a dearer replacement is charged): one row per idempotency
-- key, so money moves once however often a step is retried (R21).
CREATE TABLE money_movements (
    idempotency_key    text PRIMARY KEY,
    case_id            text        NOT NULL,
    kind               text        NOT NULL CHECK (kind IN ('refund', 'charge')),
    amount_minor       bigint      NOT NULL CHECK (amount_minor > 0),
    currency           char(3)     NOT NULL,
    status             text        NOT NULL CHECK (status IN ('pending', 'succeeded')),
    provider_reference text,
    requested_at       timestamptz NOT NULL DEFAULT now(),
    settled_at         timestamptz,
    -- The order line the money moves for, so reports say what a line got back over all
    -- its cases (one per unit sent back); the refund limit stays the case's (R21).
    order_id           text        NOT NULL,
    line_id            text        NOT NULL
);

-- ---------------------------------------------------------------- carriers and parcels

-- R15: claims filed with carriers (one per damage case).
CREATE TABLE carrier_claims (
    claim_id          text PRIMARY KEY,
    case_id           text        NOT NULL,
    carrier           text        NOT NULL,
    status            text        NOT NULL,
    currency          char(3)     NOT NULL,
    claimed_minor     bigint      NOT NULL CHECK (claimed_minor >= 0),
    recovered_minor   bigint      NOT NULL DEFAULT 0 CHECK (recovered_minor >= 0),
    -- R15: the carrier's own filing deadline; the filing SLA clock is due at it.
    file_deadline     timestamptz NOT NULL,
    filed_at          timestamptz,
    carrier_reference text,
    chases            integer     NOT NULL DEFAULT 0,
    escalated_at      timestamptz,
    closed_at         timestamptz,
    last_seq          integer     NOT NULL,  -- the claim_events seq this row reflects
    updated_at        timestamptz NOT NULL
);

-- A claim's own append-only history (R23), as case_events for a case.
CREATE TABLE claim_events (
    claim_id    text        NOT NULL,
    seq         integer     NOT NULL CHECK (seq > 0),
    occurred_at timestamptz NOT NULL,
    action      text        NOT NULL,
    rule_id     text,
    reason      text,
    status_after text       NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    -- R15, R23: the machine client that sent a carrier's answer (a carrier credential
    -- answers only its carriers' claims, infra/identity.py); none for the workflow's steps.
    answered_by text,
    PRIMARY KEY (claim_id, seq)
);

-- R7, R8, R22: parcels the warehouse sends out for a case, one per idempotency key.
CREATE TABLE shipments (
    idempotency_key text PRIMARY KEY,
    case_id         text        NOT NULL,
    sku             text        NOT NULL,
    quantity        integer     NOT NULL CHECK (quantity > 0),
    purpose         text        NOT NULL,
    reference       text,
    requested_at    timestamptz NOT NULL DEFAULT now()
);

-- Every warehouse scan of a returned parcel (R26).
CREATE TABLE scans (
    scan_id     text PRIMARY KEY,
    case_id     text        NOT NULL,
    event       text        NOT NULL,
    station     text        NOT NULL,
    grade       text,
    photos      jsonb       NOT NULL DEFAULT '[]'::jsonb,  -- emptied on erasure
    scanned_at  timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------- kept for a person

-- R26: a scan that matches no open case is kept for a person, never dropped, and
-- resolved by one (attached to a case or dismissed), with who, in which role and why.
CREATE TABLE unmatched_scans (
    scan_id     text PRIMARY KEY,
    barcode     text        NOT NULL,
    payload     jsonb       NOT NULL,
    problem     text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    resolution        text CHECK (resolution IN ('attached', 'dismissed')),
    attached_case_id  text,
    resolved_by       text,
    resolved_role     text,
    resolution_reason text,
    CONSTRAINT unmatched_scans_resolved_whole CHECK (
        (resolution IS NULL) = (resolved_at IS NULL)
        AND (resolution IS NULL) = (resolved_by IS NULL)
        AND (resolution = 'attached') = (attached_case_id IS NOT NULL))
);

-- Input refused at an edge (bad JSON, a field out of range): kept with the reason,
-- handled by a person, deleted after the retention period (apply_retention).
CREATE TABLE refused_inputs (
    id          bigserial PRIMARY KEY,
    source      text        NOT NULL,
    operation   text        NOT NULL,
    payload     text        NOT NULL,
    errors      jsonb       NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    handled_at     timestamptz,
    handled_by     text,
    handled_role   text,
    handled_reason text,
    CONSTRAINT refused_inputs_handled_whole CHECK (
        (handled_at IS NULL) = (handled_by IS NULL)
        AND (handled_at IS NULL) = (handled_reason IS NULL))
);

-- ---------------------------------------------------------------- the customer

-- Customer messages, one per idempotency key, sent when due (R14, R16).
CREATE TABLE notifications (
    idempotency_key text PRIMARY KEY,
    case_id         text        NOT NULL,
    customer_id     text        NOT NULL,
    template        text        NOT NULL,
    params          jsonb       NOT NULL,  -- replaced by {"redacted": true} on erasure
    due_at          timestamptz NOT NULL,
    sent_at         timestamptz
);

-- R25: one satisfaction survey per closed case, four dimensions on four levels.
CREATE TABLE surveys (
    case_id       text PRIMARY KEY,
    sent_at       timestamptz NOT NULL,
    answered_at   timestamptz,
    expired_at    timestamptz,
    attitude      text,
    expertise     text,
    timeliness    text,
    promise_kept  text,
    comment       text
);

-- ---------------------------------------------------------------- sealed payloads

-- One data key per case (scope = the case id; its survey and carrier claim share it),
-- wrapped with a master key of the codec's key ring (docs/sealing.md). Erasing a case's
-- Temporal payloads (GDPR art. 17) destroys its key: wrapped_key NULL, destroyed_at set;
-- the payloads stay, unreadable.
CREATE TABLE data_keys (
    scope text PRIMARY KEY,
    master_key_id text NOT NULL,
    wrapped_key bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    destroyed_at timestamptz,
    CONSTRAINT data_keys_destroyed_or_kept CHECK ((wrapped_key IS NULL) = (destroyed_at IS NOT NULL))
);

-- ---------------------------------------------------------------- SLA clocks (R24)

-- R24 at scale: each SLA clock kept per case (or carrier claim) as its ledger is written,
-- so SLA compliance over a year reads one row per clock instead of searching millions of
-- events for each start's first end. Kept by triggers on the ledgers rather than by the
-- ledger activities: every way an event is appended (the case and claim ledger steps,
-- erasure's own event) keeps the clocks current, in the same transaction as the event,
-- and a retried step (ON CONFLICT DO NOTHING) fires nothing.
--
-- The clocks' rules, one row per SLA_CLOCKS entry of domain/analytics.py (a test holds
-- the two equal): a clock runs from an event with a `starts` action to the first later
-- event of the same case (or claim) that ends it:
--   * an end needs its action (`ends`) and its role (`ends_roles`) where the rule names
--     both (R10: a decision, a call or a payment, by a person); either empty matches any;
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
CREATE TABLE sla_clock_rules (
    clock      text    PRIMARY KEY,  -- the policy setting naming its deadline
    on_claims  boolean NOT NULL,
    starts     text[]  NOT NULL,
    ends       text[]  NOT NULL,
    ends_roles text[]  NOT NULL,
    while_status text[] NOT NULL DEFAULT '{}',
    stops_in text[] NOT NULL DEFAULT '{}',
    due text NOT NULL DEFAULT 'after_length'
        CHECK (due IN ('after_length', 'at_claim_file_deadline', 'at_slot_of_end')),
    -- How long after its due time a clock's step still counts as on time (ClockRule.grace;
    -- a test holds the two equal).
    grace interval NOT NULL DEFAULT '0 seconds',
    CONSTRAINT sla_clock_rules_end_something CHECK (ends <> '{}' OR ends_roles <> '{}')
);

-- One row per started clock: `id` is the case (or, for claim clocks, the claim), ended_at
-- null while nothing ended it. Events are appended in seq order, so the first end event
-- written after a start is the first later one.
CREATE TABLE sla_clocks (
    clock      text        NOT NULL REFERENCES sla_clock_rules,
    id         text        NOT NULL,
    start_seq  integer     NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at   timestamptz,
    due_at     timestamptz,
    stopped    boolean     NOT NULL DEFAULT false,  -- ended without its step
    PRIMARY KEY (clock, id, start_seq)
);

-- ---------------------------------------------------------------- analytics (R24)

-- Delivered units as per day x SKU x batch totals, reported by the shop's backend: the
-- return rate's denominator. One row per (sku, batch, day): a report sent again replaces
-- the total with the same number (changes nothing), a corrected one replaces it; the row
-- count grows with days x batches on sale, not with order lines.
CREATE TABLE delivered_units (
    sku         text        NOT NULL,
    batch       text        NOT NULL,
    day         date        NOT NULL,
    units       bigint      NOT NULL CHECK (units >= 0),
    reported_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sku, batch, day)
);

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

-- ---------------------------------------------------------------- report rollups (R24)

-- The report's sections over a date range read per-day (time to resolve: per-week; units:
-- per-month) rollups instead of scanning 1M cases, 2M events and 1.3M SLA clocks. Each
-- is kept by a trigger in the writer's transaction, in its statement, so it is exactly as
-- current as the rows it sums; docs/analytics.md says why and what each costs.
--
-- Each case's contribution to a rollup is kept once unnarrowed (narrowed_by 'all',
-- narrowed_to '') and once under each of its category, channel, kind and reason, so a
-- report narrowed by a range and one of those reads at most the unfiltered report's
-- rows. Two or more of them, or a SKU or batch (on their index), read the base tables.
-- The rollups carry no other case field but the opening day (and the section's keys).
--
-- Counts only ever change by a row's own delta (-1 for its old contribution, +1 for its
-- new one), applied in one statement in key order so two writers lock rollup rows in the
-- same order. A row summed to 0 stays, read as absent.

-- Reasons and root causes (R7, R8): cases per opening day, reason and root cause.
CREATE TABLE report_reasons_daily (
    narrowed_by report_narrowing NOT NULL,
    narrowed_to text             NOT NULL,
    day         date             NOT NULL,
    reason      text             NOT NULL,
    root_cause  text,
    cases       bigint           NOT NULL,
    UNIQUE NULLS NOT DISTINCT (narrowed_by, narrowed_to, day, reason, root_cause)
);

-- Time to resolve: closed cases per opening week, kind, reason and whole hours to close.
-- Per week, not day: a day holds too few cases per hour for a rollup to be smaller than
-- the cases; a range's partial weeks are read from the cases.
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

-- Return rates: units per opening month, SKU, batch, kind and reason (every case: which
-- count as returned is the domain's RETURNED_KINDS and RETURNED_REASONS, applied when
-- read). Per month: a day holds about one case per SKU and batch. A range's partial
-- months are read from the cases.
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

-- Delivered units per month, SKU and batch: the rates' denominator over a range of whole
-- months, and the batch alarm's over all time. A total sent again or corrected moves the
-- month by its difference. Not narrowed: a category reads the SKUs off the units rollup.
CREATE TABLE report_delivered_monthly (
    month date   NOT NULL,
    sku   text   NOT NULL,
    batch text   NOT NULL,
    units bigint NOT NULL,
    PRIMARY KEY (month, sku, batch)
);

-- SLA compliance: ended clocks per clock, the case's opening day and how each is judged
-- (ClockRule in domain/analytics.py). A clock with its own due time (R14's slot, R15's
-- filing deadline) is late or not once it ends, whatever the policy says: kept as `late`.
-- One due its policy length after the start is kept by the whole hours it took beyond
-- its grace, `hours`: late exactly when that exceeds the length's whole hours
-- (ceil(d - g) > k <=> d > k + g). `stopped`: ended without its step, judged only when
-- late. Keyed by the clock's name, so clock rules added later are summed as they are.
-- Running clocks are few and read from sla_clocks (their partial index).
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

-- Money: movements and amount per the case's opening day, ledger action and currency.
-- The ledger is append-only (erasure redacts texts, never amounts): inserts only.
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

-- Satisfaction (R25): answers per the case's opening day, the answer's week, dimension
-- and level.
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

-- ---------------------------------------------------------------- the operators' desk

-- Signed-in browsers (desk/). A session is kept server-side, not in a signed cookie:
-- signing out (or an operator removed from the identity provider, once their row is
-- deleted) ends it at once, the CSRF token lives beside it, and no signing key has to be
-- configured or rotated. The cookie holds 32 random bytes; only their sha256 is stored,
-- so a read of this table (a backup, a replica) opens no browser's session.
CREATE TABLE desk_sessions (
    id_sha256   text PRIMARY KEY,
    actor       text NOT NULL,
    roles       text[] NOT NULL,
    csrf_token  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);

-- An OIDC sign-in between the redirect to the provider and its callback: the state's
-- sha256 (the browser also holds the state in a cookie, so another browser's callback
-- does not sign this one in), the nonce the ID token must carry, the PKCE verifier, and
-- the desk page to return to. Used once.
CREATE TABLE desk_sign_ins (
    state_sha256   text PRIMARY KEY,
    nonce          text NOT NULL,
    code_verifier  text NOT NULL,
    return_to      text NOT NULL,
    expires_at     timestamptz NOT NULL
);


-- ============================================================================ rows

-- The SLA clocks' rules (see sla_clock_rules; domain/analytics.py SLA_CLOCKS holds the
-- same, a test checks it).
INSERT INTO sla_clock_rules
    (clock, on_claims, starts, ends, ends_roles, while_status, stops_in, due, grace)
VALUES
    ('review_deadline', false, '{review_started}', '{}', '{agent,manager,supervisor}',
     '{}', '{}', 'after_length', '0 seconds'),
    ('inspection_deadline', false, '{parcel_received}',
     '{inspection_failed,inspection_passed}', '{}', '{}', '{}', 'after_length', '0 seconds'),
    ('refund_deadline', false, '{inspection_passed}',
     '{refund_issued,refund_not_due,replacement_shipped}', '{}', '{}', '{}', 'after_length',
     '0 seconds'),
    ('supervisor_response', false, '{escalated}', '{}', '{manager,supervisor}',
     '{}', '{}', 'after_length', '0 seconds'),
    ('carrier_silence_escalation', true, '{claim_filed}', '{carrier_answered}', '{}',
     '{}', '{}', 'after_length', '0 seconds'),
    -- R10: a person reaches the customer (a decision, a call, a payment); the case
    -- closing first stops it.
    ('first_contact_deadline', false, '{evidence_requested,review_started}',
     '{approved,rejected,call_scheduled,compensation_paid}', '{agent,manager,supervisor}',
     '{}', '{refused,refunded,rejected,abandoned,replaced,exchanged,delivered,withdrawn}',
     'after_length', '0 seconds'),
    -- R14: an update at each slot while the case waits (R16 may hold it to the morning).
    ('follow_up_interval', false, '{}', '{progress_update_sent}', '{}',
     '{under_review,awaiting_inspection,refund_due,exchange_due,waiting_for_stock,intercepting}',
     '{}', 'at_slot_of_end', '1 minute'),
    -- R15: the claim filed by the carrier's own deadline.
    ('claim_filing_deadline', true, '{claim_filed,claim_deadline_missed}', '{claim_filed}', '{}',
     '{}', '{}', 'at_claim_file_deadline', '0 seconds');


-- ============================================================================ indexes

-- The read model: by status, by order line (R2's look-ups), newest first (case lists),
-- and by SKU and batch (a report filtered by them reads the cases).
CREATE INDEX cases_status_idx ON cases (status);
CREATE INDEX cases_order_idx ON cases (order_id, line_id);
CREATE INDEX cases_opened_idx ON cases (opened_at DESC);
CREATE INDEX cases_sku_batch_idx ON cases (sku, batch);

-- The work queues' sort key: `coalesce(next_deadline, 'infinity')` puts cases with no
-- deadline last and lets one row comparison page through them (infra/case_queues.py).
-- Every index holds open cases only: closed ones leave them, so they stay the size of the
-- work.
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

-- R2: one case per order line and request id, held by the index when two requests race.
CREATE UNIQUE INDEX case_requests_one_case_per_request
    ON case_requests (order_id, line_id, request_id)
    WHERE NOT opened_before_r2_across_kinds;

CREATE INDEX case_notes_written_idx ON case_notes (case_id, written_at);
CREATE INDEX case_tracking_numbers_case_idx ON case_tracking_numbers (case_id);

-- A case's rows in the tables keyed by something else (erasure, the case page).
CREATE INDEX money_movements_case_idx ON money_movements (case_id);
-- What an order line got back over all its cases.
CREATE INDEX money_movements_line_idx ON money_movements (order_id, line_id);
CREATE INDEX carrier_claims_case_idx ON carrier_claims (case_id);
CREATE INDEX shipments_case_idx ON shipments (case_id);
CREATE INDEX scans_case_idx ON scans (case_id);
CREATE INDEX notifications_case_idx ON notifications (case_id);

-- What is still waiting for a person, oldest first.
CREATE INDEX unmatched_scans_open_idx ON unmatched_scans (received_at, scan_id)
    WHERE resolved_at IS NULL;
CREATE INDEX refused_inputs_open_idx ON refused_inputs (received_at, id)
    WHERE handled_at IS NULL;

-- Running clocks (few: read by the report and judged as they run), and the newest
-- breaches of a clock, walked from the newest start.
CREATE INDEX sla_clocks_running_idx ON sla_clocks (id) WHERE ended_at IS NULL;
CREATE INDEX sla_clocks_newest_idx ON sla_clocks (clock, started_at DESC);

CREATE INDEX delivered_units_day_idx ON delivered_units (day);

-- Expired sessions are swept by their end.
CREATE INDEX desk_sessions_expiry ON desk_sessions (expires_at);


-- ============================================================================ functions

-- ---------------------------------------------------------------- append-only ledgers (R23)

-- claim_events and batch_events: no update, no delete.
CREATE FUNCTION case_events_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'case_events is append-only (R23): % refused', TG_OP;
END;
$$;

-- case_events: events are never deleted, and an update may only replace who (the
-- customer's id by a pseudonym), the free-text reason and the personal keys of details,
-- inside a transaction that declared it redacts. Any other change is refused.
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

-- case_notes: likewise, only a note's words may be replaced, by redaction.
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

-- ---------------------------------------------------------------- erasure and retention

-- Personal data past its time (docs/privacy.md): a customer's erasure request (GDPR
-- art. 17) and the retention rule remove free text and identity from the ledger, while
-- money records and the audit trail's structure (rows, actions, amounts, times) stay.

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

-- The ledger's free text of these cases replaced by `marker`: reasons people wrote
-- (customers, staff, the arbiter; system, warehouse and carrier reasons are the rules'
-- own words), personal details, the read model's decision reason, message parameters,
-- survey comments and parcel photos. Idempotent.
CREATE FUNCTION redact_ledger_free_text(case_ids text[], marker text) RETURNS void
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

-- Erasure and retention both call this (infra/privacy.py): the ledger's free text, the
-- case's view, the notes' words, the tracking numbers' hashes, and what a scan attached
-- to the case by a person kept (the reason they wrote, its photos: its barcode names
-- another case, so the ledger's redaction misses it).
CREATE FUNCTION redact_free_text(case_ids text[], marker text) RETURNS void
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

-- ---------------------------------------------------------------- a ledger step (R23)

-- One ledger step (activities/ledger.py): the event appended (a repeat of its (case, seq)
-- changes nothing), then the case's read-model row moved to it unless it already shows a
-- later step, in one call and one transaction: one round trip instead of four (BEGIN, two
-- statements, COMMIT). Two statements in this order, as the rollups need (report
-- rollups below). `snapshot`: the case's row as JSON (CaseSnapshot, its columns by name).
-- True if this call appended the event.
CREATE FUNCTION record_case_step(
    step_seq integer, occurred timestamptz, step_actor text, step_role text,
    step_action text, step_rule_id text, step_reason text, step_details jsonb,
    snapshot jsonb
) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    s cases := jsonb_populate_record(NULL::cases, snapshot);
    appended boolean;
BEGIN
    INSERT INTO case_events (case_id, seq, occurred_at, actor, role, action, rule_id, reason,
                             status_after, details)
    VALUES (s.case_id, step_seq, occurred, step_actor, step_role, step_action, step_rule_id,
            step_reason, s.status, step_details)
    ON CONFLICT (case_id, seq) DO NOTHING
    RETURNING true INTO appended;
    INSERT INTO cases (case_id, kind, reason, channel, order_id, line_id, request_id, sku,
                       category, batch, quantity, customer_id, status, currency, paid_minor,
                       refund_limit_minor, refunded_minor, policy_version, waiting_for,
                       next_deadline, decision_reason, root_cause, opened_at, closed_at,
                       carrier, assigned_agent, escalation_level, sla_breached_at, disputed,
                       case_view, last_seq, updated_at)
    SELECT s.case_id, s.kind, s.reason, s.channel, s.order_id, s.line_id, s.request_id,
           s.sku, s.category, s.batch, s.quantity, s.customer_id, s.status, s.currency,
           s.paid_minor, s.refund_limit_minor, s.refunded_minor, s.policy_version,
           s.waiting_for, s.next_deadline, s.decision_reason, s.root_cause, s.opened_at,
           s.closed_at, s.carrier, s.assigned_agent, s.escalation_level, s.sla_breached_at,
           s.disputed, s.case_view, step_seq, occurred
    ON CONFLICT (case_id) DO UPDATE SET
        kind = EXCLUDED.kind, reason = EXCLUDED.reason, channel = EXCLUDED.channel,
        order_id = EXCLUDED.order_id, line_id = EXCLUDED.line_id,
        request_id = EXCLUDED.request_id, sku = EXCLUDED.sku, category = EXCLUDED.category,
        batch = EXCLUDED.batch, quantity = EXCLUDED.quantity,
        customer_id = EXCLUDED.customer_id, status = EXCLUDED.status,
        currency = EXCLUDED.currency, paid_minor = EXCLUDED.paid_minor,
        refund_limit_minor = EXCLUDED.refund_limit_minor,
        refunded_minor = EXCLUDED.refunded_minor, policy_version = EXCLUDED.policy_version,
        waiting_for = EXCLUDED.waiting_for, next_deadline = EXCLUDED.next_deadline,
        decision_reason = EXCLUDED.decision_reason, root_cause = EXCLUDED.root_cause,
        opened_at = EXCLUDED.opened_at, closed_at = EXCLUDED.closed_at,
        carrier = EXCLUDED.carrier, assigned_agent = EXCLUDED.assigned_agent,
        escalation_level = EXCLUDED.escalation_level,
        sla_breached_at = EXCLUDED.sla_breached_at, disputed = EXCLUDED.disputed,
        case_view = EXCLUDED.case_view, last_seq = EXCLUDED.last_seq,
        updated_at = EXCLUDED.updated_at
    WHERE cases.last_seq < EXCLUDED.last_seq;
    RETURN coalesce(appended, false);
END $$;

-- ---------------------------------------------------------------- SLA clocks (R24)

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

-- One ledger event's effect on the clocks: ends the running clocks it ends (by its step,
-- or stopped by the status it leaves the case in), starts those it starts. `slot`: when
-- the event was due, if it says (R14); `only_clocks`: the clocks to follow (null: all),
-- for a backfill of clocks added later.
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

-- A case's events keep its clocks; a `due_at` in the details that is not a time is
-- refused by the cast, with the event.
CREATE FUNCTION sla_clocks_follow_case_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM sla_clocks_follow(false, NEW.case_id, NEW.seq, NEW.occurred_at, NEW.action,
                              NEW.role, NEW.status_after,
                              (NEW.details ->> 'due_at')::timestamptz);
    RETURN NULL;
END $$;

-- A claim's events keep its clocks (R15 filing, the carrier's silence).
CREATE FUNCTION sla_clocks_follow_claim_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- claim_events have no role: a carrier is the only actor
    PERFORM sla_clocks_follow(true, NEW.claim_id, NEW.seq, NEW.occurred_at, NEW.action,
                              NULL, NEW.status_after, NULL);
    RETURN NULL;
END $$;

-- ---------------------------------------------------------------- report rollups (R24)

-- The day, week (Monday, UTC) and month a moment is summed under.
CREATE FUNCTION report_day(at timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE AS $$ SELECT (at AT TIME ZONE 'UTC')::date $$;

CREATE FUNCTION report_week(at timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE AS $$ SELECT date_trunc('week', at AT TIME ZONE 'UTC')::date $$;

CREATE FUNCTION report_month(at timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE AS $$ SELECT date_trunc('month', at AT TIME ZONE 'UTC')::date $$;

-- A duration in whole hours, rounded up: a deadline of k hours is met exactly when this
-- is at most k (ceil(d) <= k <=> d <= k for a whole k), and a percentile of these is the
-- exact one rounded up (rounding up keeps the order).
CREATE FUNCTION report_hours(span interval) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT ceil(extract(epoch FROM span) / 3600)::integer $$;

-- The rows a case's contribution is summed in: unnarrowed, and under each field a report
-- may narrow by alone.
CREATE FUNCTION report_narrowings(c cases)
RETURNS TABLE (narrowed_by report_narrowing, narrowed_to text)
LANGUAGE sql IMMUTABLE AS $$
    VALUES ('all'::report_narrowing, ''), ('category', c.category), ('channel', c.channel),
           ('kind', c.kind), ('reason', c.reason)
$$;

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

-- A case's own rows, `n` times (+1 to add it, -1 to take it out), under each narrowing.
-- PL/pgSQL, as the functions below: it keeps its statements' plans for the session, where
-- a SQL function with several statements plans them on every call (2.5 times the cost of
-- an opening's rollups in a measurement of 6,000 openings).
CREATE FUNCTION report_count_case(c cases, n integer) RETURNS void
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
--
-- A case's kind, reason, category, channel and opening moment come from its opening
-- request and every ledger step writes them back unchanged; should one change (a
-- correction), the case's clocks, money movements and answers move between the narrowed
-- rows with it. Such a change is sound when no other transaction writes that case's
-- clocks, money or answers meanwhile (the move sees only what has committed);
-- report_rollups_rebuild() sums everything afresh otherwise. For a move to count each of
-- them exactly once, every rollup trigger runs in its statement, not at commit: a ledger
-- step appends its event, then writes the case's row, as two statements, so an event is
-- summed under the case's fields as they were and then moved with the case's row. An
-- event, clock or answer written before its case's row exists is summed nowhere until
-- that row is inserted, which sums the case's whole past (the opening step writes its
-- event first, in the same transaction). A claim's clocks need their claim's row
-- (carrier_claim_file_deadline refuses a claim event without it), which always comes
-- after its case's.
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

-- A case's row inserted or moved: its own rows, and when the fields it is narrowed by
-- change, its details' rows with it.
CREATE FUNCTION report_rollups_follow_cases() RETURNS trigger LANGUAGE plpgsql AS $$
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

-- A delivered total inserted or corrected: its month moves by the difference.
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

-- One clock's change, under its case's fields now; a clock whose case has no row yet is
-- summed when that row is inserted.
CREATE FUNCTION report_rollups_follow_sla_clocks() RETURNS trigger
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

-- An event that moves money, summed under its case's fields (none yet: summed when the
-- case's row is inserted).
CREATE FUNCTION report_rollups_follow_money() RETURNS trigger LANGUAGE plpgsql AS $$
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

-- A survey answered, re-answered or withdrawn: its old answers out, its new ones in.
CREATE FUNCTION report_rollups_follow_surveys() RETURNS trigger
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

-- Every rollup summed afresh from its base tables, in one pass each: a bulk load (the
-- scale benchmark's) writes with the triggers off and calls it after (row by row in one
-- long transaction, each rollup row would keep a dead version per row written until the
-- commit), as does a correction made while others write the same cases.
CREATE FUNCTION report_rollups_rebuild() RETURNS void LANGUAGE sql AS $$
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


-- ============================================================================ triggers

-- Triggers on one table fire in their names' order: on case_events,
-- case_events_keep_report_money before case_events_keep_sla_clocks (see
-- report_count_case_details).

-- R23: the ledgers are append-only (case_events and case_notes but for redaction).
CREATE TRIGGER case_events_append_only
    BEFORE UPDATE OR DELETE ON case_events
    FOR EACH ROW EXECUTE FUNCTION case_events_only_redacted();
CREATE TRIGGER case_notes_append_only
    BEFORE UPDATE OR DELETE ON case_notes
    FOR EACH ROW EXECUTE FUNCTION case_notes_only_redacted();
CREATE TRIGGER claim_events_append_only
    BEFORE UPDATE OR DELETE ON claim_events
    FOR EACH ROW EXECUTE FUNCTION case_events_are_append_only();
CREATE TRIGGER batch_events_append_only
    BEFORE UPDATE OR DELETE ON batch_events
    FOR EACH ROW EXECUTE FUNCTION case_events_are_append_only();

-- R24: every event appended keeps its case's (or claim's) SLA clocks.
CREATE TRIGGER case_events_keep_sla_clocks AFTER INSERT ON case_events
    FOR EACH ROW EXECUTE FUNCTION sla_clocks_follow_case_events();
CREATE TRIGGER claim_events_keep_sla_clocks AFTER INSERT ON claim_events
    FOR EACH ROW EXECUTE FUNCTION sla_clocks_follow_claim_events();

-- R24: the report rollups, kept in the writer's statement.
-- A case's row is never deleted (erasure redacts it): inserts and updates only.
CREATE TRIGGER cases_keep_report_rollups_on_insert AFTER INSERT ON cases
    FOR EACH ROW EXECUTE FUNCTION report_rollups_follow_cases();
-- Each ledger step rewrites the case's row: only a change the rollups sum fires.
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
-- Totals are inserted or corrected, never deleted.
CREATE TRIGGER delivered_units_keep_report_rollups AFTER INSERT OR UPDATE ON delivered_units
    FOR EACH ROW EXECUTE FUNCTION report_rollups_follow_deliveries();
CREATE TRIGGER sla_clocks_keep_report_rollups AFTER INSERT OR UPDATE OR DELETE ON sla_clocks
    FOR EACH ROW EXECUTE FUNCTION report_rollups_follow_sla_clocks();
-- Only events that move money.
CREATE TRIGGER case_events_keep_report_money AFTER INSERT ON case_events
    FOR EACH ROW WHEN (NEW.details ? 'amount_minor')
    EXECUTE FUNCTION report_rollups_follow_money();
CREATE TRIGGER surveys_keep_report_rollups AFTER INSERT OR UPDATE OR DELETE ON surveys
    FOR EACH ROW EXECUTE FUNCTION report_rollups_follow_surveys();
