"""Reach: reading published posts' figures from the platforms into dated snapshots."""
