"""The findings section of RESULTS.md: what was profiled, what was found and fixed."""

FINDINGS = """
## Findings

(to be written)
"""
