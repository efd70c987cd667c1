"""Facebook per-post Insights metric names by Graph API version: the one table the Facebook
adapter reads figures by (and the sandbox refuses names by, as Graph does).

Sources (read 6–7 December 2026):

- Meta, Graph API reference "Page Insights" (developers.facebook.com/docs/graph-api/reference/
  insights, English page updated 18 February 2026): "By June 15, 2026, a number of the Page
  Insights metrics will be deprecated for all API versions. The API returns an invalid metric
  error when calling any of these metrics." Post metrics are read with ``GET /{post-id}/insights
  ?metric=…``; a lifetime metric answers ``{"data": [{"name", "period": "lifetime", "values":
  [{"value": …}]}]}`` (…/reference/post/insights, …/reference/insights_result).
- Meta, "Deprecated Page Insights Metrics" (updated 2 March 2026) and the Meta developer blog of
  15 August 2025: ``post_impressions_unique`` is deprecated, replaced by
  ``post_total_media_view_unique`` (from v23.0, platform-apis.md §7). Meta's own pages disagree
  on the dates, hence fallbacks: a name Graph refuses with #100 ("The value must be a valid
  insights metric") makes the reader try the next one.
- ``post_reactions_by_type_total`` (a map of reaction type → count, e.g. ``{"like": 12,
  "love": 3}``) and ``post_clicks`` (a count): the same Page Insights reference, all versions
  of this table.

Pure: no clock (``today`` is a parameter), no network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

INVALID_METRIC = "(#100) The value must be a valid insights metric"  # Graph's own words
FIGURES = ("views", "reactions", "clicks")  # from the insights edge (comments, shares: fields)


@dataclass(frozen=True)
class MetricName:
    """One Insights metric name: which figure it gives, from which version Graph accepts it,
    and the day Graph stopped accepting it in every version (None: still accepted)."""

    name: str
    figure: str  # views | reactions | clicks
    since: str  # the first Graph version that has it ("v13.0": every version in the table)
    removed_on: date | None = None
    source: str = ""


NAMES: tuple[MetricName, ...] = (
    # Meta blog 15 Aug 2025; platform-apis.md §7: the media-view metrics from v23.0 on.
    MetricName(
        "post_total_media_view_unique",
        "views",
        since="v23.0",
        source="Deprecated Page Insights Metrics (2 March 2026); Meta blog 15 August 2025",
    ),
    # Page Insights reference (18 February 2026): deprecated in every version by 15 June 2026.
    MetricName(
        "post_impressions_unique",
        "views",
        since="v13.0",
        removed_on=date(2026, 6, 15),
        source="Page Insights reference, updated 18 February 2026",
    ),
    MetricName(
        "post_reactions_by_type_total",
        "reactions",
        since="v13.0",
        source="Page Insights reference (post metrics)",
    ),
    MetricName("post_clicks", "clicks", since="v13.0", source="Page Insights reference"),
)
BY_NAME = {m.name: m for m in NAMES}


def _number(version: str) -> tuple[int, int]:
    """``"v23.0"`` → (23, 0); no version (the app's default) counts as the newest."""
    m = re.fullmatch(r"v(\d+)\.(\d+)", version.strip().strip("/"))
    return (int(m.group(1)), int(m.group(2))) if m else (10**6, 0)


def names_for(version: str, figure: str) -> tuple[str, ...]:
    """The metric names to try for ``figure`` on Graph ``version``, best first: the names the
    version has, newest first, then those it lacks (as fallbacks, in case Meta's pages are
    wrong about the version). Dates are left to Graph: a removed name answers #100 and the
    reader moves on."""
    has = [m for m in NAMES if m.figure == figure and _number(m.since) <= _number(version)]
    lacks = [m for m in NAMES if m.figure == figure and m not in has]
    return tuple(m.name for m in (*has, *lacks))


def accepted(version: str, name: str, today: date) -> bool:
    """Whether Graph ``version`` accepts ``name`` on ``today`` (the sandbox refuses the rest
    with #100, as Graph does)."""
    metric = BY_NAME.get(name)
    if metric is None:
        return False
    if metric.removed_on is not None and today >= metric.removed_on:
        return False
    return _number(metric.since) <= _number(version)
