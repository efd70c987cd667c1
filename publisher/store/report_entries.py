"""The office's entries for the report (``report_entry`` rows, keyed as in
``publisher.report_entries.ENTRIES``): set from report.toml or the web app's form, read by the
report. Setting a value it already has changes nothing (no new time, no new author)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from publisher.report_entries import BY_KEY
from publisher.store.db import exclusive
from publisher.store.models import ReportEntryRow


@dataclass(frozen=True)
class Entry:
    key: str
    value: str
    source: str  # "file" | "web"
    set_by: str | None
    set_at: datetime


def entries(s: Session) -> dict[str, Entry]:
    """Every stored entry, by key."""
    return {
        r.key: Entry(r.key, r.value, r.source, r.set_by, r.set_at)
        for r in s.scalars(select(ReportEntryRow))
    }


def lock(s: Session) -> None:
    """Serialise ``s``'s transaction with every other that changes the entries (the web form,
    ``load``), until it ends: on PostgreSQL two saves at once would both read the old values,
    both pass the form's "changed meanwhile" check, and the second overwrite the first (or both
    insert a new key and one fail). Take it before reading what is to be changed."""
    exclusive(s, "report-entries")


def put(s: Session, key: str, value: str, *, source: str, by: str | None, now: datetime) -> bool:
    """Set ``key`` to ``value`` in ``s``'s transaction (an empty value removes it); True if
    anything changed."""
    if key not in BY_KEY:
        raise KeyError(key)
    row = s.get(ReportEntryRow, key)
    if not value.strip():
        if row is None:
            return False
        s.delete(row)
        return True
    if row is not None and row.value == value:
        return False
    if row is None:
        s.add(ReportEntryRow(key=key, value=value, source=source, set_by=by, set_at=now))
    else:
        row.value, row.source, row.set_by, row.set_at = value, source, by, now
    return True
