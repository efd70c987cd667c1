"""Zalo's broadcast allowances (platform-apis.md §7): warnings for a plan the OA's package or
verification cannot carry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from publisher.channels.zalo_quotas import (
    ARTICLES_PER_BROADCAST,
    BROADCASTS_PER_FOLLOWER_MONTH,
    MODERATION_MINUTES,
    broadcast_problems,
)
from tests.fakes import run


def test_the_table_follows_the_documented_packages() -> None:
    assert BROADCASTS_PER_FOLLOWER_MONTH == {"basic": 1, "advanced": 4, "premium": 6}
    assert (ARTICLES_PER_BROADCAST, MODERATION_MINUTES) == (5, 30)


@pytest.mark.parametrize(("package", "allowed"), [("basic", 1), ("Advanced", 4), (" PREMIUM ", 6)])
def test_a_plan_within_the_package_has_no_problem(package: str, allowed: int) -> None:
    assert broadcast_problems(package, True, {"2024-06": allowed, "2024-07": 1}) == []


def test_each_month_over_the_allowance_is_one_line() -> None:
    problems = broadcast_problems("Advanced", True, {"2024-07": 3, "2024-06": 9, "2024-08": 5})
    assert problems == [
        "2024-06: 9 Zalo broadcasts planned, but on the Advanced package each follower receives "
        "at most 4 a month: 5 would not reach them (broadcast fewer articles, or change the "
        "package)",
        "2024-08: 5 Zalo broadcasts planned, but on the Advanced package each follower receives "
        "at most 4 a month: 1 would not reach them (broadcast fewer articles, or change the "
        "package)",
    ]
    assert broadcast_problems("basic", True, {"2024-06": 2})[0].startswith(
        "2024-06: 2 Zalo broadcasts planned, but on the Basic package each follower receives "
        "at most 1 a month"
    )


def test_an_unverified_oa_may_not_broadcast_at_all() -> None:
    problems = broadcast_problems("premium", False, {"2024-06": 2, "2024-07": 1})
    assert problems == [
        "the Zalo OA is not verified: only verified OAs may broadcast (since 2022-06-22), so none "
        "of the 3 planned broadcasts would reach followers (verify the OA, or set the channel's "
        "broadcast = false)"
    ]


def test_nothing_broadcast_means_no_problem_whatever_the_oa() -> None:
    assert broadcast_problems("basic", False, {}) == []
    assert broadcast_problems("gold", False, {"2024-06": 0}) == []


def test_an_unknown_package_is_named_and_counted_as_basic() -> None:
    problems = broadcast_problems("gold", True, {"2024-06": 2})
    assert problems[0] == (
        "unknown Zalo OA package 'gold', counted as basic: the packages and their broadcasts per "
        "follower a month are basic (1), advanced (4), premium (6)"
    )
    assert problems[1].startswith("2024-06: 2 Zalo broadcasts planned, but on the Basic package")
    assert len(problems) == 2


def test_every_warning_is_one_line() -> None:
    problems = broadcast_problems("", False, {"2024-06": 3, "2024-07": 7})
    assert len(problems) == 4
    assert all("\n" not in p and p == p.strip() for p in problems)


@pytest.mark.parametrize("month", ["2024-6", "2024-13", "06-2024", "2024-06-01"])
def test_a_month_not_written_yyyy_mm_is_a_programming_error(month: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        broadcast_problems("basic", True, {month: 1})


# -- through `publisher check` ----------------------------------------------------------------


def set_zalo(campaign: Path, **settings: str) -> None:
    path = campaign / "config.toml"
    text = path.read_text(encoding="utf-8")
    for key, value in settings.items():
        text, n = re.subn(rf"(?m)^{key} = \S+", f"{key} = {value}", text)
        assert n == 1, key
    path.write_text(text, encoding="utf-8")


def test_check_warns_when_the_plan_broadcasts_more_than_the_package_allows(campaign: Path) -> None:
    set_zalo(campaign, broadcast="true")
    result = run("check")
    assert result.exit_code == 0, result.stderr  # a warning, not an error
    assert "2024-06: 20 Zalo broadcasts planned, but on the Basic package each follower" in (
        result.stderr
    )
    assert "Zalo moderates each broadcast for about 30 minutes" in result.stderr
    set_zalo(campaign, broadcast="true", package='"premium"', verified="false")
    result = run("check")
    assert "on the Premium package each follower receives at most 6 a month" in result.stderr
    assert "the Zalo OA is not verified" in result.stderr


def test_check_says_nothing_of_quotas_without_broadcasts(campaign: Path) -> None:
    result = run("check")
    assert result.exit_code == 0
    assert "broadcast" not in result.stderr


def test_an_unknown_package_in_the_config_is_refused(campaign: Path) -> None:
    set_zalo(campaign, package='"gold"')
    result = run("check")
    assert result.exit_code != 0
    assert "channels.zalo.package: is 'gold' (one of: basic, advanced, premium)" in result.stderr
