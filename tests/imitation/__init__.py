"""An independent imitation of the four platforms publisher talks to (Facebook Graph, Zalo OA,
a WordPress site, a signed webhook), written from their documented behaviour
(platform-apis.md, standardwebhooks.com) rather than from publisher's own sandbox.

Run it in its own process, so killing publisher never kills it::

    python -m tests.imitation --port 8777 --record items.jsonl --faults '*:5xx=0.05' --seed 7

It serves the sandbox's URL layout (``--sandbox-url URL`` points publisher at it) and accepts
the sandbox's public test credentials (``publisher/sandbox/credentials.py``).
"""

from tests.imitation.core import FaultPlan
from tests.imitation.process import ImitationProcess
from tests.imitation.server import Imitation

__all__ = ["FaultPlan", "Imitation", "ImitationProcess"]
