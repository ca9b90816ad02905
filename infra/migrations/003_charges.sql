-- R22: a dearer replacement is charged; charges are money movements like refunds.
ALTER TABLE money_movements DROP CONSTRAINT money_movements_kind_check;
ALTER TABLE money_movements ADD CONSTRAINT money_movements_kind_check
    CHECK (kind IN ('refund', 'charge'));
