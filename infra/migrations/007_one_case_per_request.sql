-- R2: an order line and request id open one case, whatever kind the request asks for; the
-- index holds it when two requests race. The columns follow the stored request.
ALTER TABLE case_requests
    ADD COLUMN order_id text NOT NULL GENERATED ALWAYS AS (request->>'order_id') STORED,
    ADD COLUMN line_id text NOT NULL GENERATED ALWAYS AS (request->>'line_id') STORED,
    ADD COLUMN opened_before_r2_across_kinds boolean NOT NULL DEFAULT false;
-- Requests that opened a second case of another kind before this rule was enforced keep
-- their cases (they are running or closed, with money on them); the first stays the one
-- the rule counts, the others are marked and left out of the index.
UPDATE case_requests r SET opened_before_r2_across_kinds = true
WHERE EXISTS (
    SELECT 1 FROM case_requests first
    WHERE (first.order_id, first.line_id, first.request_id)
        = (r.order_id, r.line_id, r.request_id)
      AND first.case_id < r.case_id
);
CREATE UNIQUE INDEX case_requests_one_case_per_request
    ON case_requests (order_id, line_id, request_id)
    WHERE NOT opened_before_r2_across_kinds;
