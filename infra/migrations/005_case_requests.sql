-- R2: every request to open a case, written before its workflow starts, so a request is
-- never lost (Temporal unreachable: the retry finds it here and starts the case) and a
-- request id reused with other details is refused without asking the workflow.
CREATE TABLE case_requests (
    case_id     text PRIMARY KEY,
    request_id  text        NOT NULL,
    request     jsonb       NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
