"""The phases of a case's life, shared by the kinds: each takes the case's desk, runs while
the case is in it (so a run resumed after continue-as-new re-enters the right one), and
returns a typed outcome."""
