"""Facebook Graph API versions and when each stops working: the table ``check`` warns from.

Source: Meta's "Available Graph API Versions" table, developers.facebook.com/docs/graph-api/
changelog/versions (and the changelog page itself, whose copies list v26.0 as the latest),
read 6 December 2026; also platform-apis.md §7 (v26.0 released 29 July 2026, v25.0 18 February
2026, v21.0 stops working 21 January 2027). Every date below is Meta's own; none is computed.

Meta's policy (developers.facebook.com/docs/apps/versions): "Each version is guaranteed to
operate for at least two years. A version will no longer be usable two years after the date
that the subsequent version is released." Meta's table overrides it where they differ (v22.0
ends 20 May 2027, nine days before two years after v23.0). v26.0 has no end date yet: no later
version is confirmed. (A copy of the changelog updated 29 October 2026 lists a version dated
4 November 2026 without its name; if that is v27.0, v26.0 works until at least 4 November 2028
by the policy. Not entered, as unconfirmed.) Add each new version here when Meta releases it.

Pure: no clock (``today`` is a parameter), no network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class GraphVersion:
    """A Graph API version: its release and the day it stops working."""

    name: str
    released: date
    available_until: date | None  # the day it stops working; None: not announced yet


VERSIONS: tuple[GraphVersion, ...] = (
    GraphVersion("v13.0", date(2022, 2, 8), date(2024, 5, 28)),
    GraphVersion("v14.0", date(2022, 5, 25), date(2024, 9, 17)),
    GraphVersion("v15.0", date(2022, 9, 15), date(2024, 11, 20)),
    GraphVersion("v16.0", date(2023, 2, 2), date(2025, 5, 14)),
    GraphVersion("v17.0", date(2023, 5, 23), date(2025, 9, 12)),
    GraphVersion("v18.0", date(2023, 9, 12), date(2026, 1, 26)),
    GraphVersion("v19.0", date(2024, 1, 23), date(2026, 5, 21)),
    GraphVersion("v20.0", date(2024, 5, 21), date(2026, 9, 24)),
    GraphVersion("v21.0", date(2024, 10, 2), date(2027, 1, 21)),
    GraphVersion("v22.0", date(2025, 1, 21), date(2027, 5, 20)),
    GraphVersion("v23.0", date(2025, 5, 29), date(2027, 10, 8)),
    GraphVersion("v24.0", date(2025, 10, 8), date(2028, 2, 18)),
    GraphVersion("v25.0", date(2026, 2, 18), date(2028, 7, 29)),
    GraphVersion("v26.0", date(2026, 7, 29), None),
)
CURRENT = VERSIONS[-1].name
SOON = timedelta(days=90)  # warn this long before a version stops working
UPGRADE = f'set api_version = "{CURRENT}", the current version'


@dataclass(frozen=True)
class VersionNote:
    """What to tell the operator about a channel's Graph API version."""

    text: str  # one sentence, ending with what to do
    dead: bool  # the version no longer works: the channel cannot publish


def _number(name: str) -> tuple[int, int] | None:
    m = re.fullmatch(r"v(\d+)\.(\d+)", name.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


def version_note(version: str, today: date, campaign_end: date) -> VersionNote | None:
    """What to tell the operator about Graph API ``version``; None when it outlives the campaign
    and is not about to expire."""
    table = {v.name: v for v in VERSIONS}
    name = version.strip().strip("/")
    if not name:
        return VersionNote(
            "no api_version: calls go to the app's default Graph API version, whose end of life "
            f"publisher cannot check ({UPGRADE})",
            dead=False,
        )
    known = table.get(name)
    if known is None:
        number, oldest = _number(name), _number(VERSIONS[0].name)
        if number is not None and oldest is not None and number < oldest:
            return VersionNote(
                f"Graph API {name} is older than every version publisher knows ({VERSIONS[0].name}"
                f" stopped working on {VERSIONS[0].available_until}), so it no longer works "
                f"({UPGRADE})",
                dead=True,
            )
        return VersionNote(
            f"Graph API {name} is not in publisher's table of versions ({VERSIONS[0].name} to "
            f"{CURRENT}), so its end of life is unknown: check developers.facebook.com/docs/"
            f"graph-api/changelog/versions ({UPGRADE})",
            dead=False,
        )
    until = known.available_until
    if until is None:
        return None
    if until <= today:
        return VersionNote(f"Graph API {name} stopped working on {until} ({UPGRADE})", dead=True)
    if until <= campaign_end:
        return VersionNote(
            f"Graph API {name} stops working on {until}, before the campaign ends on "
            f"{campaign_end} ({UPGRADE})",
            dead=False,
        )
    if until - today <= SOON:
        days = (until - today).days
        return VersionNote(
            f"Graph API {name} stops working on {until}, in {days} days ({UPGRADE})", dead=False
        )
    return None
