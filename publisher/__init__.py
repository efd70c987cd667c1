"""publisher: scheduled social-media publishing for public bodies.

The pipeline, in order: config → content → render → plan → editorial.load (the queue, with the
board's approvals) → dispatch (publishing through channels/) → documents (preview, calendar,
report); app wires them, cli is the face. README's Development section draws the layers.
"""

__version__ = "0.1.0"
