"""Templates cannot exhaust the machine, and a bad template file is one line, never a traceback.

Each dangerous template is rendered by a real ``publisher load`` in a subprocess whose address
space is capped (RLIMIT_AS) and whose run time is bounded, so a regression fails the test
(MemoryError, a kill, a timeout) instead of taking the machine down with it.
"""

from __future__ import annotations

import resource
import shutil
import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from publisher import render
from publisher.config import load_config
from publisher.editorial.check import run_check

MEMORY_CAP = 1 << 30  # 1 GiB: far more than a render needs, far less than an attack takes
TIMEOUT = 120  # seconds: a safety net for a regression, not a speed requirement
ARTICLE = "templates/zalo/article.j2"
HEAD = (
    "{% block title %}{{ message.title }}{% endblock %}"
    "{% block author %}{{ campaign.organisation }}{% endblock %}"
    "{% block description %}{{ message.summary }}{% endblock %}"
)


def capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def publisher(campaign: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "publisher", *args],
        cwd=campaign,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        preexec_fn=capped,
        check=False,
    )


@pytest.fixture
def one_article(campaign: Path) -> Path:
    """The campaign with a single article, so one render decides the outcome."""
    shutil.rmtree(campaign / "messages" / "slogans")
    for path in sorted((campaign / "messages" / "articles").glob("*.md"))[1:]:
        path.unlink()
    return campaign


def queue_is_empty(campaign: Path) -> bool:
    db = campaign / "publisher.db"
    if not db.exists():
        return True
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        return (
            "message" not in tables
            or conn.execute("SELECT count(*) FROM message").fetchone()[0] == 0
        )


def one_error_line(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr[-2000:])
    assert "Traceback" not in out.stderr + out.stdout, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr[-2000:]
    assert lines[0].startswith(f"error: {ARTICLE}: ")
    return lines[0]


ATTACKS = {
    "repeat": "{{ 'a' * 2000000000 }}",
    "repeat-list": "{{ ([1] * 2000000000) | length }}",
    "concat-doubling": (
        "{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}"
    ),
    "plus-doubling": (
        "{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
        "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}"
    ),
    "set-block-doubling": (
        "{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
        "{% set ns.s %}{{ ns.s }}{{ ns.s }}{% endset %}{% endfor %}{{ ns.s | length }}"
    ),
    "percent-width": "{{ '%9999999999s' % 'x' }}",
    "percent-precision": "{{ '%.999999999f' % 1.5 }}",
    "format-width": "{{ '{:>2000000000}'.format(1) }}",
    "format-filter": "{{ '%2000000000s' | format('x') }}",
    "center-filter": "{{ 'x' | center(2000000000) }}",
    "center-method": "{{ 'x'.center(2000000000) }}",
    "ljust-method": "{{ 'x'.ljust(2000000000) }}",
    "indent": "{{ message.body | indent(2000000000) }}",
    "wordwrap": "{{ message.body | wordwrap(2000000000) }}",
    "replace": "{{ ('a' * 100000).replace('', 'b' * 100000) }}",
    "join": "{{ range(100000) | join('x' * 100000) }}",
    "power": "{{ 2 ** 999999999 }}",
    "range": "{{ range(2000000000) | length }}",
    "lipsum": "{{ lipsum(2000000, False, 5000, 5000) }}",
    "batch": "{{ [1] | batch(2000000000, 'x') | list | length }}",
    "output-loop": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{{ 'x' * 1000 }}"
        "{% endfor %}{% endfor %}"
    ),
    "list-growth": (
        "{% set l = [1] %}{% for i in range(64) %}{% set _ = l.extend(l) %}{% endfor %}"
        "{{ l | length }}"
    ),
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_a_template_cannot_exhaust_memory(one_article: Path, name: str) -> None:
    (one_article / ARTICLE).write_text(
        HEAD + "{% block body %}" + ATTACKS[name] + "{% endblock %}", encoding="utf-8"
    )
    out = publisher(one_article, "load", "--as", "vanphong")
    line = one_error_line(out)
    assert "size limit" in line or "too big" in line or "range" in line.lower(), line
    assert "messages/articles/01-thang-hanh-dong-2024.md" in line
    assert queue_is_empty(one_article)


def test_the_size_limit_is_named_with_its_value(one_article: Path) -> None:
    (one_article / ARTICLE).write_text(
        HEAD + "{% block body %}{{ 'a' * 2000000000 }}{% endblock %}", encoding="utf-8"
    )
    line = one_error_line(publisher(one_article, "load", "--as", "vanphong"))
    assert f"exceeds the size limit of {render.SIZE_LIMIT:,} characters" in line


@pytest.mark.parametrize(
    "body",
    [
        "{% include 'article.j2' %}",
        "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}",
    ],
    ids=["self-include", "recursive-macro"],
)
def test_endless_recursion_is_one_line(one_article: Path, body: str) -> None:
    (one_article / ARTICLE).write_text(
        HEAD + "{% block body %}" + body + "{% endblock %}", encoding="utf-8"
    )
    line = one_error_line(publisher(one_article, "load", "--as", "vanphong"))
    assert "recursion" in line
    assert queue_is_empty(one_article)


def test_deeply_nested_template_is_one_line_in_load_and_check(one_article: Path) -> None:
    nested = "(" * 20000 + "1" + ")" * 20000
    (one_article / ARTICLE).write_text(
        HEAD + "{% block body %}{{ " + nested + " }}{% endblock %}", encoding="utf-8"
    )
    one_error_line(publisher(one_article, "load", "--as", "vanphong"))
    out = publisher(one_article, "check")
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("error: ")]
    assert errors and all(ARTICLE in ln for ln in errors), out.stderr[-2000:]


def test_ordinary_runtime_errors_are_one_line(one_article: Path) -> None:
    (one_article / ARTICLE).write_text(
        HEAD + "{% block body %}{{ 1 / 0 }}{% endblock %}", encoding="utf-8"
    )
    line = one_error_line(publisher(one_article, "load", "--as", "vanphong"))
    assert "division by zero" in line


# -- item 16: a template that is not UTF-8 ----------------------------------------------------


def test_latin1_template_is_one_line_in_load_and_check(one_article: Path) -> None:
    text = HEAD + "{% block body %}Gọi 111 – café, señor{% endblock %}".replace("ọ", "o")
    (one_article / ARTICLE).write_bytes(text.encode("latin-1", errors="replace"))
    raw = (one_article / ARTICLE).read_bytes()
    bad = next(i for i, b in enumerate(raw) if b >= 0x80)
    line = one_error_line(publisher(one_article, "load", "--as", "vanphong"))
    assert line == f"error: {ARTICLE}: is not UTF-8 text (byte {bad}) (save it as UTF-8)"
    assert queue_is_empty(one_article)
    out = publisher(one_article, "check")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"error: {ARTICLE}: is not UTF-8 text (byte {bad}) (save it as UTF-8)" in (
        out.stderr.splitlines()
    )


def test_check_names_a_latin1_template_once(one_article: Path) -> None:
    (one_article / ARTICLE).write_bytes(b"{% block body %}caf\xe9{% endblock %}")
    config = load_config(one_article / "config.toml")
    result = run_check(config, today=date(2024, 5, 20))
    mine = [p for p in result.problems if ARTICLE in p]
    assert mine == [f"{ARTICLE}: is not UTF-8 text (byte 19) (save it as UTF-8)"]
