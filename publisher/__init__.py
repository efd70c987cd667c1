"""publisher: scheduled social-media publishing for public bodies.

Pipeline, in module order: config → content → render → plan → outbox (the queue) → preview.
"""

__version__ = "0.1.0"
