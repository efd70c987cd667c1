"""The editorial board: who may do what. Pure: reads the config, nothing else."""

from __future__ import annotations

from publisher.config import Config, Member
from publisher.errors import PublisherError

DRAFTER = frozenset({"load", "add", "edit", "import"})
EDITOR = DRAFTER | {"reschedule", "hold", "release", "cancel", "reject", "pause", "resume"}
APPROVER = EDITOR | {"approve"}
PERMISSIONS = {"drafter": DRAFTER, "editor": EDITOR, "approver": APPROVER}
VERBS = {
    "load": "loading content",
    "add": "adding posts",
    "edit": "editing posts",
    "import": "importing a CSV",
    "reschedule": "rescheduling",
    "hold": "holding posts",
    "release": "releasing held posts",
    "cancel": "cancelling posts",
    "reject": "rejecting posts",
    "pause": "pausing channels",
    "resume": "resuming channels",
    "approve": "approving posts",
}


class NotAllowed(PublisherError):
    """The actor's role may not do this."""


def authorize(config: Config, actor: str, action: str) -> str:
    """The actor's name as the board knows it, or NotAllowed saying why and who may."""
    if not config.board:
        return actor  # no board configured: a single-user setup, anyone may do anything
    member = config.board.get(actor.strip().casefold())
    if member is None:
        raise NotAllowed(
            f"--as {actor}",
            "is not a member of the editorial board",
            f"add them to [board] members in {config.path.name}, or act as a member",
        )
    if action not in PERMISSIONS[member.role]:
        who = sorted({m.name for m in config.board.values() if action in PERMISSIONS[m.role]})
        needs = next(r for r in ("drafter", "editor", "approver") if action in PERMISSIONS[r])
        raise NotAllowed(
            f"--as {actor}",
            f"{member.name} is a {member.role}: {VERBS.get(action, action)} needs the {needs} role",
            "members who may: " + ", ".join(who),
        )
    return member.name


def member(config: Config, actor: str) -> Member | None:
    return config.board.get(actor.strip().casefold())
