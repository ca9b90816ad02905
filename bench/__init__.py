"""Benchmarks (`make bench`): each figure a ratio against bare Temporal, same run."""
