"""The burst rows of ``bench/lateness.py`` say what failed instead of printing nan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import lateness


def _result(n: int, published: int, p99: float, **more: Any) -> dict[str, Any]:
    return {"n": n, "published": published, "p50": p99 / 2, "p95": p99, "p99": p99} | {
        "max": p99,
        "failed": n - published,
        "why": [("zalo: ReadError: ", n - published)] if published < n else [],
        "passes": 1,
        "rate": 1.0,
        "detours": [],
        **more,
    }


def test_a_ratio_over_a_floor_with_failed_calls_is_said_on_what_succeeded() -> None:
    r = _result(1000, 1000, 3.0)
    f = _result(1000, 919, 2.0)
    said = lateness._ratio(r, f)
    assert said.startswith("p99 1.50× the floor's")
    assert "on what succeeded (1000/1000 sent, 919/1000 floor calls)" in said
    assert "81 of 1000 calls failed (81× zalo: ReadError: )" in lateness._failed(f)


def test_a_whole_floor_failed_gives_no_ratio_and_no_nan() -> None:
    said = lateness._ratio(_result(10, 10, 1.0), _result(10, 0, float("nan")))
    assert said == "no ratio: no floor call succeeded"


def test_a_measurement_that_raises_becomes_a_row_saying_why(tmp_path: Path) -> None:
    def broken(tmp: Path, n: int, **_: Any) -> dict[str, Any]:
        raise RuntimeError("the sandbox process did not say where it listens")

    r = lateness._safely(broken, tmp_path, 12, concurrency=8)
    assert lateness._figure(r) == "not measured"
    assert lateness._note(r) == (
        "not measured: RuntimeError: the sandbox process did not say where it listens"
    )
    assert "nan" not in lateness._ratio(r, r) + lateness._failed(r)


def test_the_note_says_when_the_calls_began_when_it_was_noted() -> None:
    noted = lateness._note(_result(40, 40, 0.12, call_p50=0.004, call_p99=0.011))
    assert "calls began p50/p99 4/11 ms after their time" in noted
    assert "calls began" not in lateness._note(_result(40, 40, 0.12))
    unnoted = lateness._note(
        _result(40, 0, float("nan"), call_p50=float("nan"), call_p99=float("nan"))
    )
    assert "calls began" not in unnoted and "nan" not in unnoted


def test_the_call_start_of_each_post_is_noted_once() -> None:
    from datetime import UTC, datetime

    from publisher.clock import FakeClock

    class Adapter:
        def publish(self, post: Any) -> str:
            return f"sent {post.post_id}"

    class Post:
        post_id = 7

    clock = FakeClock(datetime(2024, 6, 1, tzinfo=UTC))
    adapter = Adapter()
    began = lateness._timed({"x": adapter}, clock)
    assert adapter.publish(Post()) == "sent 7"
    first = clock.now()
    clock.set(datetime(2024, 6, 1, 0, 1, tzinfo=UTC))
    adapter.publish(Post())  # a resend: the first call's start stays
    assert began == {7: first}
