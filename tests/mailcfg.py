"""Edits of the shipped config.toml for tests that need the campaign without its mail: the shipped
one has a ``[mail]`` table (placeholder values) and ``portal_pbgdpl`` as an ``email`` channel."""

from __future__ import annotations

from pathlib import Path

from tests.fakes import as_webhook_pbgdpl


def table_span(text: str, header: str) -> tuple[int, int]:
    """Where the table ``header`` starts and ends (at the blank line after it) in ``text``."""
    assert text.count(f"\n{header}\n") == 1, header
    start = text.index(f"\n{header}\n") + 1
    return start, text.index("\n\n", start) + 1


def without_mail(text: str) -> str:
    """config.toml's text without its ``[mail]`` table, if it has one (a test adds its own, or
    wants none)."""
    if "\n[mail]\n" not in text:
        return text
    start, end = table_span(text, "[mail]")
    return text[:start] + text[end:]


def no_mail_campaign(campaign: Path) -> Path:
    """The campaign's config.toml rewritten with no mail at all: no ``[mail]``, and portal_pbgdpl
    a webhook channel (an email channel needs mail). Its path."""
    path = campaign / "config.toml"
    path.write_text(as_webhook_pbgdpl(without_mail(path.read_text("utf-8"))), "utf-8")
    return path
