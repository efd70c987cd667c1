"""The report page's work: the office's entries (``publisher.report_entries.ENTRIES``) as a form —
each value checked (counts and money whole numbers, texts of bounded length), saved in one
transaction with who and when (``store.report_entries.put``, source "web") and one audit entry per
changed value — and the report built for a chosen date (the downloads' ``date=``).

A value is saved only if nobody changed it since the form was shown (each field carries a digest
of the value it showed): else the whole form is refused with the field named, nothing written.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from publisher.documents import report
from publisher.report_entries import ENTRIES, EntrySpec
from publisher.store import audit
from publisher.store import report_entries as stored
from publisher.text import nfc
from publisher.web.auth import Refused, Viewer
from publisher.web.context import WebContext
from publisher.web.lang import _
from publisher.web.views import local_text

TEXT_MAX = 20_000  # characters in one text entry (a section of a report: a few pages at most)
LIMITS = {"count": 10**9, "money": 10**15}  # a billion children, a million billion đồng
AUDIT_ACTION = "report_entry"
AUDIT_DETAIL = 120  # characters of a text kept in its audit entry
# 1234, 1.234, 1 234 or 1,234 (a Vietnamese or an English grouping), an optional "đ"/"đồng"
_WHOLE = re.compile(
    r"^([0-9]{1,3}(?:([., ])[0-9]{3})?(?:\2[0-9]{3})*|[0-9]+)\s*(?:đồng|đ|vnđ|vnd)?$", re.I
)


class EntryError(Exception):
    """A field of the form the office must correct: its key and the one-line reason."""

    def __init__(self, key: str, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.key = key
        self.reason = reason
        self.status = status


def digest(value: str) -> str:
    """What a field remembers of the value it showed (short: it only detects a change)."""
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def parse(spec: EntrySpec, raw: str) -> str:
    """The value to store for ``raw`` as typed ('' to clear it), or EntryError naming the field."""
    text = nfc(raw).replace("\r\n", "\n").strip()
    if spec.kind == "text":
        if len(text) > TEXT_MAX:
            raise EntryError(
                spec.key,
                _(
                    "%(field)s: at most %(n)s characters; shorten the text.",
                    field=spec.label,
                    n=f"{TEXT_MAX:,}".replace(",", "."),
                ),
            )
        if "\x00" in text:
            raise EntryError(spec.key, _("%(field)s: the text has a NUL byte.", field=spec.label))
        return text
    if not text:
        return ""
    found = _WHOLE.match(text)
    digits = re.sub(r"[^0-9]", "", found[1]) if found else ""
    if not digits:
        example = "1.500.000" if spec.kind == "money" else "120"
        raise EntryError(
            spec.key,
            _(
                "%(field)s: write a whole number, e.g. %(example)s (not %(value)s).",
                field=spec.label,
                example=example,
                value=repr(text[:40]),
            ),
        )
    value = int(digits)
    if value > LIMITS[spec.kind]:
        raise EntryError(
            spec.key, _("%(field)s: the number is too large; check it.", field=spec.label)
        )
    return str(value)


@dataclass(frozen=True)
class Field:
    """One entry as the form shows it."""

    spec: EntrySpec
    value: str  # as stored (or as typed, when the form comes back refused)
    seen: str  # digest of the stored value when the form was made
    set_by: str | None
    set_at: str  # dd/mm/yyyy HH:MM, '' when not set
    source: str  # "file", "web" or '' when not set

    @property
    def name(self) -> str:
        return self.spec.key

    @property
    def id(self) -> str:
        return "e-" + self.spec.key.replace(".", "-")

    @property
    def shown(self) -> str:
        """A count or an amount grouped as Vietnamese documents write it (1.500.000)."""
        if self.spec.kind != "text" and self.value.isdigit():
            return f"{int(self.value):,}".replace(",", ".")
        return self.value


def fields(ctx: WebContext, typed: Mapping[str, str] | None = None) -> list[Field]:
    """Every entry, in ENTRIES order, with what is stored (``typed`` overrides the values)."""
    with ctx.db.read() as s:
        found = stored.entries(s)
    out = []
    for spec in ENTRIES:
        e = found.get(spec.key)
        value = e.value if e else ""
        out.append(
            Field(
                spec,
                typed.get(spec.key, value) if typed is not None else value,
                digest(value),
                e.set_by if e else None,
                local_text(e.set_at, ctx.config) if e else "",
                e.source if e else "",
            )
        )
    return out


def save(ctx: WebContext, viewer: Viewer, form: Mapping[str, str]) -> list[str]:
    """Check every field, then store the changed ones in one transaction with an audit entry each
    (actor, key, the new value's beginning); the keys changed. A key the form does not send is
    left alone. Nothing is written if any field is
    wrong (EntryError, 400) or was changed by someone else since the form was shown (409)."""
    who = viewer.authorize("report")
    # a field the form does not send is left as it is (never cleared by its absence)
    values = {spec.key: parse(spec, form[spec.key]) for spec in ENTRIES if spec.key in form}
    now = ctx.now()
    changed: list[str] = []
    with ctx.db.write() as s:
        stored.lock(s)
        current = stored.entries(s)
        for spec in ENTRIES:
            old = current[spec.key].value if spec.key in current else ""
            new = values.get(spec.key, old)
            if new == old:
                continue
            seen = form.get(f"seen.{spec.key}")
            if seen is not None and seen != digest(old):
                e = current.get(spec.key)
                raise EntryError(
                    spec.key,
                    _(
                        "%(field)s: %(who)s changed it at %(when)s after this form was opened; "
                        "reload the page and enter your change again.",
                        field=spec.label,
                        who=(e.set_by if e else None) or "?",
                        when=local_text(e.set_at, ctx.config) if e else "?",
                    ),
                    409,
                )
            stored.put(s, spec.key, new, source="web", by=who, now=now)
            shown = new if len(new) <= AUDIT_DETAIL else new[: AUDIT_DETAIL - 1] + "…"
            audit.record(s, at=now, actor=who, action=AUDIT_ACTION, subject=spec.key, detail=shown)
            changed.append(spec.key)
    return changed


# -- the report for a date ----------------------------------------------------------------------


def report_day(ctx: WebContext, raw: str) -> date | None:
    """The ``date=`` of a download: ``YYYY-MM-DD`` (a date field's value) or ``dd/mm/yyyy``;
    None when empty (the report is dated today). Refused(400) naming ``date`` otherwise."""
    raw = raw.strip()
    if not raw:
        return None
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            day = datetime.strptime(raw, fmt).date()  # noqa: DTZ007  (a date, no time)
            break
        except ValueError:
            continue
    else:
        raise Refused(
            400,
            _("Bad request"),
            _("date: %(value)s is not a date; write it like 30/06/2024.", value=repr(raw[:40])),
        )
    today = ctx.now().astimezone(ctx.config.tz).date()
    if day > today:
        raise Refused(
            400,
            _("Bad request"),
            _("date: a report cannot be dated after today (%(today)s).", today=f"{today:%d/%m/%Y}"),
        )
    return day


def build(ctx: WebContext, day: date | None) -> report.Report:
    """The report as ``publisher report --date`` makes it: dated ``day`` (today when None), its
    figures read up to the end of that day in the campaign's time zone."""
    return report.build_report(ctx.db, ctx.config, ctx.now(), day=day)


def page_values(ctx: WebContext, viewer: Viewer, **extra: Any) -> dict[str, Any]:
    """What report.html shows."""
    today = ctx.now().astimezone(ctx.config.tz).date()
    shown = extra.pop("fields", None) or fields(ctx)
    return {
        "fields": shown,
        "missing": sum(1 for f in shown if not f.set_at),
        "can_edit": viewer.may("report"),
        "today": today.isoformat(),
        "error": "",
        "error_key": "",
        **extra,
    }
