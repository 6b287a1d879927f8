"""Benchmarks: speed and quality numbers written to bench/results.json and bench/results.md."""
