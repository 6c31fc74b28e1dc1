"""benchmarks experiment package."""
