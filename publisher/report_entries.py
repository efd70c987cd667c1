"""What the office enters for the report, beside what publisher counts itself: the figures of
§2.4 (children given gifts and awards) and §2.5 (the Quỹ Bảo trợ trẻ em drive), and the passages
of text only people can write (how the month was directed, the assessment, the proposals).

Each entry has a stable key. They come from ``report.toml`` (read by ``publisher load``, checked
by ``publisher check``: ``parse``) or the web app's form, and are stored in the ``report_entry``
table (``publisher.store.report_entries``); the report marks each one still missing
"[Cần bổ sung]". Pure: text in, values or one-line problems out.
"""

from __future__ import annotations

import difflib
import re
import tomllib
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal

from publisher.errors import ContentError

Kind = Literal["count", "money", "text"]  # money: whole đồng


@dataclass(frozen=True)
class EntrySpec:
    key: str  # as written in report.toml: "<table>.<name>", e.g. "gifts.children"
    kind: Kind
    label: str  # Vietnamese, for the form and the error lines
    help: str = ""


ENTRIES: tuple[EntrySpec, ...] = (
    EntrySpec("direction.text", "text", "I. Công tác chỉ đạo, tổ chức thực hiện"),
    EntrySpec("office.text", "text", "2.1. Hoạt động truyền thông tại cơ quan"),
    EntrySpec("gifts.children", "count", "2.4. Số trẻ em được tặng quà, trao thưởng"),
    EntrySpec("gifts.value", "money", "2.4. Tổng giá trị quà, phần thưởng (đồng)"),
    EntrySpec("gifts.text", "text", "2.4. Hoạt động chăm lo cho trẻ em (mô tả)"),
    EntrySpec("fund.amount", "money", "2.5. Số tiền ủng hộ Quỹ Bảo trợ trẻ em (đồng)"),
    EntrySpec("fund.donors", "count", "2.5. Số người ủng hộ"),
    EntrySpec("fund.text", "text", "2.5. Vận động ủng hộ Quỹ (mô tả)"),
    EntrySpec("assessment.strengths", "text", "III. Ưu điểm"),
    EntrySpec("assessment.limits", "text", "III. Tồn tại, hạn chế"),
    EntrySpec("assessment.causes", "text", "III. Nguyên nhân"),
    EntrySpec("proposals.text", "text", "IV. Đề xuất, kiến nghị"),
)
BY_KEY = {e.key: e for e in ENTRIES}

FILE = "report.toml"  # in the messages folder, beside the content files
_GROUPED = re.compile(r"^\d{1,3}(\.\d{3})+$")  # "25.000.000", as the office writes amounts


def value(spec: EntrySpec, raw: Any) -> str:
    """``raw`` (from TOML or a form) as the stored text of ``spec``'s entry; ValueError says
    in one line what is wrong with it."""
    if spec.kind == "text":
        if not isinstance(raw, str):
            raise ValueError("must be text in quotes")
        return unicodedata.normalize("NFC", raw).strip()
    n = raw
    if isinstance(raw, str):
        text = raw.strip()
        if text.isdigit() or _GROUPED.match(text):
            n = int(text.replace(".", ""))
        elif re.fullmatch(r"-\s*\d[\d.]*", text):
            raise ValueError("must not be negative")
    if isinstance(n, bool) or not isinstance(n, int):
        what = "an amount in đồng" if spec.kind == "money" else "a whole number"
        raise ValueError(f"must be {what}, not {raw!r}")
    if n < 0:
        raise ValueError("must not be negative")
    return str(n)


def parse(text: str, where: str) -> tuple[dict[str, str], list[ContentError]]:
    """The entries ``report.toml`` sets (key → stored text; a commented-out or empty one is
    absent) and a one-line problem for each mistake."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return {}, [ContentError(where, f"is not valid TOML: {exc}", "fix the line it names")]
    tables = sorted({e.key.split(".")[0] for e in ENTRIES})
    out: dict[str, str] = {}
    problems: list[ContentError] = []
    for table, items in data.items():
        if table not in tables:
            close = difflib.get_close_matches(table, tables, 1)
            hint = f"did you mean [{close[0]}]?" if close else f"tables: {', '.join(tables)}"
            problems.append(ContentError(where, f"[{table}] is not a known table", hint))
            continue
        if not isinstance(items, dict):
            problems.append(ContentError(where, f"{table} must be a table", f"write [{table}]"))
            continue
        names = [e.key.split(".")[1] for e in ENTRIES if e.key.startswith(table + ".")]
        for name, raw in items.items():
            key = f"{table}.{name}"
            spec = BY_KEY.get(key)
            if spec is None:
                close = difflib.get_close_matches(name, names, 1)
                hint = (
                    f"did you mean {table}.{close[0]}?"
                    if close
                    else "keys: " + ", ".join(f"{table}.{n}" for n in names)
                )
                problems.append(ContentError(where, f"{key} is not a known key", hint))
                continue
            try:
                stored = value(spec, raw)
            except ValueError as exc:
                problems.append(ContentError(where, f"{key} {exc}", spec.label, field=key))
                continue
            if stored:
                out[key] = stored
    return out, problems
