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
