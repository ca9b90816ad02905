-- R2: an order line and request id open one case, whatever kind the request asks for; the
-- index holds it when two requests race. The columns follow the stored request.
ALTER TABLE case_requests
    ADD COLUMN order_id text NOT NULL GENERATED ALWAYS AS (request->>'order_id') STORED,
    ADD COLUMN line_id text NOT NULL GENERATED ALWAYS AS (request->>'line_id') STORED;
CREATE UNIQUE INDEX case_requests_one_case_per_request
    ON case_requests (order_id, line_id, request_id);
