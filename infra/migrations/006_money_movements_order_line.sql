-- Every money movement names the order line it moves money for, so reports can say what
-- a line got back over all its cases (a line may have several: one per unit sent back).
-- The refund limit itself stays the case's (R21): each request carries what was paid.
ALTER TABLE money_movements ADD COLUMN order_id text, ADD COLUMN line_id text;
UPDATE money_movements m SET order_id = c.order_id, line_id = c.line_id
FROM cases c WHERE c.case_id = m.case_id;
UPDATE money_movements m
SET order_id = r.request->>'order_id', line_id = r.request->>'line_id'
FROM case_requests r WHERE r.case_id = m.case_id AND m.order_id IS NULL;
-- A movement of no known case cannot be reported on its line: stop here for a person.
ALTER TABLE money_movements
    ALTER COLUMN order_id SET NOT NULL, ALTER COLUMN line_id SET NOT NULL;
CREATE INDEX money_movements_line_idx ON money_movements (order_id, line_id);
