"""Steps shared by every case kind: ledger book-keeping, timers, ship-back, refund."""
