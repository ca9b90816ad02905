"""Steps shared by every case kind: the ledger, outside calls, timers, payments, shipments."""
