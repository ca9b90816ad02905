"""Pure after-sales domain: typed values and the rules of shared/domain.md.

Nothing here imports temporalio, touches I/O or reads a clock: time is passed in.
"""
