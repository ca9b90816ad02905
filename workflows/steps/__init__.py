"""Steps shared by every case kind: ledger book-keeping, outside calls, timers, payments, shipments."""
