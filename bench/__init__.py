"""Benchmarks: scripts that measure fms_dgt through the real CLI (see docs/benchmarks.md)."""
