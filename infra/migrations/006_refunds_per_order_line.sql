-- R21: what was paid for an order line is refunded at most once in all, however many
-- cases the line has (another request id, another kind). Every money movement names the
-- line it pays against, so the refund limit is checked on that line alone.
ALTER TABLE money_movements ADD COLUMN order_id text, ADD COLUMN line_id text;
UPDATE money_movements m SET order_id = c.order_id, line_id = c.line_id
FROM cases c WHERE c.case_id = m.case_id;
UPDATE money_movements m
SET order_id = r.request->>'order_id', line_id = r.request->>'line_id'
FROM case_requests r WHERE r.case_id = m.case_id AND m.order_id IS NULL;
-- A movement of no known case cannot be counted against its line: stop here for a person
-- rather than let the line be refunded again.
ALTER TABLE money_movements
    ALTER COLUMN order_id SET NOT NULL, ALTER COLUMN line_id SET NOT NULL;
CREATE INDEX money_movements_line_idx ON money_movements (order_id, line_id)
    WHERE kind = 'refund';
