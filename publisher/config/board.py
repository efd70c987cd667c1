"""The editorial board: who acts, and who may do what. Pure: reads the config, nothing else
(the caller passes the OS user and the names given)."""

from __future__ import annotations

from publisher.config.model import ROLES, Config, Member, member_key
from publisher.errors import PublisherError
from publisher.i18n import N_, _

DRAFTER = frozenset({"load", "add", "edit", "import"})
# ``confirm``: record the live address of a post mailed to a portal's desk (handed_off);
# ``report``: set the office's entries for the report (the web app's /report form)
EDITOR = DRAFTER | {
    "reschedule",
    "hold",
    "release",
    "cancel",
    "reject",
    "pause",
    "resume",
    "confirm",
    "report",
}
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
    "confirm": "confirming handed-off posts",
    "report": "editing the report's entries",
}


def permissions(config: Config, role: str) -> frozenset[str]:
    """What a member of ``role`` may do under ``config``: a role's own permissions, and
    ``approve`` for every role that may take one of the approval steps (``[board]
    approval_steps``: with an editor's step, editors approve too — that step)."""
    allowed = PERMISSIONS.get(role, frozenset())
    if role in ROLES and any(ROLES.index(role) >= ROLES.index(s) for s in config.approval.steps):
        allowed = allowed | {"approve"}
    return allowed


def _needs(config: Config, action: str) -> str:
    """The lowest role that may do ``action``."""
    return next(r for r in ROLES if action in permissions(config, r))


# The roles as the interface names them (msgids; Vietnamese through the catalog).
ROLE_LABELS = {"drafter": N_("drafter"), "editor": N_("editor"), "approver": N_("approver")}


def role_label(role: str) -> str:
    """``role`` in the interface's language (an unknown one as it is)."""
    label = ROLE_LABELS.get(role)
    return _(label) if label else role


class NotAllowed(PublisherError):
    """The actor's role may not do this."""


def maps_os_users(config: Config) -> bool:
    """Whether the config ties members to OS users (then the OS user says who acts)."""
    return any(m.os_user for m in config.board.values())


def identify(config: Config, given: str | None, env_as: str | None, os_user: str) -> str:
    """Who runs this command: ``given`` (--as), else ``env_as`` (PUBLISHER_AS), else the OS
    user — unless the config maps OS users: then the member mapped to ``os_user``, whom --as and
    PUBLISHER_AS may only name again; a service account must name the member it acts for."""
    requested, source = next(
        ((v.strip(), s) for v, s in ((given, "--as"), (env_as, "PUBLISHER_AS")) if v and v.strip()),
        (None, ""),
    )
    if not maps_os_users(config):
        return requested or os_user
    if os_user in config.service_accounts:
        if requested is None:
            raise NotAllowed(
                f"OS user {os_user}",
                "is a service account: it must name the member it acts for",
                "with --as NAME or PUBLISHER_AS",
            )
        return requested
    mine = next((m for m in config.board.values() if m.os_user == os_user), None)
    if mine is None:
        raise NotAllowed(
            f"OS user {os_user}",
            "is not mapped to a member of the board",
            f'add os_user = "{os_user}" to their entry in [board] members of '
            f"{config.path.name}, or run it from a member's own OS account",
        )
    if requested is not None and config.board.get(member_key(requested)) != mine:
        raise NotAllowed(
            f"{source} {requested}",
            f"OS user {os_user} is {mine.name}: {source} may only name them",
            "run it from the OS account of the member you mean",
        )
    return mine.name


def authorize(config: Config, actor: str, action: str) -> str:
    """The actor's name as the board knows it, or NotAllowed saying why and who may."""
    if not config.board:
        return actor  # no board configured: a single-user setup, anyone may do anything
    member = config.board.get(member_key(actor))
    if member is None:
        raise NotAllowed(
            f"--as {actor}",
            "is not a member of the editorial board",
            f"add them to [board] members in {config.path.name}, or act as a member",
        )
    if action not in permissions(config, member.role):
        who = sorted(
            {m.name for m in config.board.values() if action in permissions(config, m.role)}
        )
        needs = _needs(config, action)
        raise NotAllowed(
            f"--as {actor}",
            f"{member.name} is a {member.role}: {VERBS.get(action, action)} needs the {needs} role",
            "members who may: " + ", ".join(who),
        )
    return member.name


def authorize_account(config: Config, name: str, role: str, action: str) -> str:
    """For a logged-in account (web app, API): the board's rules when the config has a board
    (the account bears its member's name), else the account's own role."""
    if config.board:
        return authorize(config, name, action)
    if action not in permissions(config, role):
        needs = _needs(config, action)
        raise NotAllowed(
            name, f"{name} is a {role}: {VERBS.get(action, action)} needs the {needs} role"
        )
    return name


def member(config: Config, actor: str) -> Member | None:
    return config.board.get(member_key(actor))


def role_of(config: Config, actor: str) -> str | None:
    """The board role of ``actor`` (None without a board: a single-user setup, any role)."""
    found = member(config, actor)
    return found.role if found else None
