"""Configs of the benchmarks experiment (`get_config()` presets)."""
