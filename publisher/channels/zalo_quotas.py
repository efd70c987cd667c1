"""What a Zalo OA may broadcast, known before the campaign (pure: no network, no clock).

Source: platform-apis.md §7 "Zalo broadcasts" (vinasite.com.vn, developers-zns.goby.vn; §2.4 for
the wire format): only verified OAs may broadcast (since 22/06/2022); on the Basic / Advanced /
Premium package each follower can receive 1 / 4 / 6 broadcasts a month; a broadcast carries up
to 5 articles and Zalo moderates it for about 30 minutes before followers get it. An OA over its
allowance is refused with -211 ("out of quota"), a follower over theirs is skipped (-218).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# Broadcasts each follower can receive in a calendar month, by the OA's package.
BROADCASTS_PER_FOLLOWER_MONTH: dict[str, int] = {"basic": 1, "advanced": 4, "premium": 6}
ARTICLES_PER_BROADCAST = 5
MODERATION_MINUTES = 30  # about: Zalo reviews a broadcast before delivering it
VERIFIED_ONLY_SINCE = "2022-06-22"  # unverified OAs may not broadcast since this day

_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def broadcast_problems(
    package: str, verified: bool, broadcasts_per_month: Mapping[str, int]
) -> list[str]:
    """One-line warnings about a plan that broadcasts ``broadcasts_per_month`` ("YYYY-MM" →
    broadcasts planned that month) from an OA on ``package`` (basic, advanced or premium, any
    case), ``verified`` or not. None when nothing is broadcast. An unknown package is warned
    about and counted as Basic, the smallest allowance."""
    for month in broadcasts_per_month:
        if not _MONTH.fullmatch(month):
            raise ValueError(f"{month!r} is not a month as YYYY-MM")
    planned = {m: n for m, n in sorted(broadcasts_per_month.items()) if n > 0}
    if not planned:
        return []
    problems = []
    total = sum(planned.values())
    if not verified:
        problems.append(
            f"the Zalo OA is not verified: only verified OAs may broadcast (since "
            f"{VERIFIED_ONLY_SINCE}), so none of the {total} planned broadcasts would reach "
            "followers (verify the OA, or set the channel's broadcast = false)"
        )
    key = package.strip().lower()
    allowed = BROADCASTS_PER_FOLLOWER_MONTH.get(key)
    if allowed is None:
        known = ", ".join(f"{k} ({n})" for k, n in BROADCASTS_PER_FOLLOWER_MONTH.items())
        problems.append(
            f"unknown Zalo OA package {package!r}, counted as basic: the packages and their "
            f"broadcasts per follower a month are {known}"
        )
        key, allowed = "basic", BROADCASTS_PER_FOLLOWER_MONTH["basic"]
    for month, n in planned.items():
        if n > allowed:
            problems.append(
                f"{month}: {n} Zalo broadcasts planned, but on the {key.capitalize()} package "
                f"each follower receives at most {allowed} a month: {n - allowed} would not "
                "reach them (broadcast fewer articles, or change the package)"
            )
    return problems
