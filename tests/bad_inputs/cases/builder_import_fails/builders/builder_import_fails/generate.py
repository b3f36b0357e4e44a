"""Fails on import."""

RATIO = 1
BROKEN = RATIO / 0
