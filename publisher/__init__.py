"""publisher: scheduled social-media publishing for public bodies.

The pipeline, in order: config → content → render → plan → editorial.load (the queue, with the
board's approvals) → dispatch (publishing through channels/) → documents (preview, calendar,
report); app wires them, cli is the face. README's Development section draws the layers.
"""

__version__ = "0.1.0"

import sys

# httpx imports its own command-line client (``httpx._main``: rich's syntax highlighting and
# pygments, ~3.5 MB) whenever those happen to be installed, as they are here. publisher never
# runs it: the import is refused, and httpx keeps the stub it has for that case. A daemon
# stays smaller by as much (bench item 4).
if "httpx._main" not in sys.modules:
    sys.modules["httpx._main"] = None  # type: ignore[assignment]
