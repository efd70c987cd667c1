"""Content coming in from the board: a new message (``queue add``), an edit (``queue edit``) and
a CSV import. Files in messages/ stay the source of truth: each writes files atomically, then
loads them in one transaction, and puts every file back as it was if anything fails.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from publisher.config import Config
from publisher.content import FIELDS, read_message, write_atomic
from publisher.editorial.load import LoadReport, load
from publisher.errors import ContentError, InputError, Problems, PublisherError
from publisher.store.db import Database
from publisher.text import clean, nfc, slugify
from publisher.vietnamese import LegacyEncodingError, check_text

CSV_COLUMNS = ("kind", "title", "summary", "body", "channels", "pinned", "at", "cover", "cover_alt")
_KIND_DIR = {"slogan": "slogans", "article": "articles"}


def render_file(meta: Mapping[str, Any], body: str) -> str:
    """Front matter (YAML, Unicode kept) and body, as a content file: the one place text typed
    on the command line or in a CSV cell comes in, so controls and bidi overrides go here."""
    kept = {k: _cleaned(v) for k, v in meta.items() if v not in (None, "", [])}
    front = yaml.safe_dump(kept, allow_unicode=True, sort_keys=False, width=1000)
    return f"---\n{front}---\n{clean(nfc(body)).strip()}\n"


def _cleaned(value: Any) -> Any:
    if isinstance(value, str):
        return clean(nfc(value))
    if isinstance(value, list):
        return [_cleaned(v) for v in value]
    return value


def validate(config: Config, path: Path, text: str, where: str) -> None:
    """Check ``text`` as the content of ``path`` would be checked by ``load``."""
    fd, tmp = tempfile.mkstemp(prefix=".check-", suffix=".md", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        staged = path.parent / Path(tmp).name
        read_message(staged, config.messages_dir, config)
    except ContentError as exc:
        raise ContentError(where, exc.problem.removeprefix(f"{exc.path}: "), exc.hint) from exc
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextmanager
def _rollback_files(paths: Sequence[Path]) -> Iterator[None]:
    """Put ``paths`` back as they were if the block fails."""
    saved = {p: p.read_bytes() if p.exists() else None for p in paths}
    try:
        yield
    except BaseException:
        for p, data in saved.items():
            if data is None:
                p.unlink(missing_ok=True)
            else:
                p.write_bytes(data)
        raise


@contextmanager
def _folder(folder: Path) -> Iterator[None]:
    """``folder`` (and its missing parents) made for the block, and removed again if the block
    fails: a refused add or import leaves no new, empty folder in messages/."""
    made: list[Path] = []
    for parent in [folder, *folder.parents]:
        if parent.exists():
            break
        made.append(parent)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        for p in made:  # the deepest first
            with suppress(OSError):
                p.rmdir()
        raise


def inside(config: Config, path: Path, where: str) -> Path:
    """``path`` if it resolves (links and ``..`` followed) inside messages/; else an InputError:
    nothing is ever written outside it."""
    root = config.messages_dir.resolve()
    if not path.resolve().is_relative_to(root):
        raise InputError(
            where,
            f"{path} is not inside {config.messages_dir.name}/",
            "give a post id or a message key like articles/02-quyen-tre-em",
        )
    return path


def new_path(config: Config, kind: str, title: str, folder: str | None = None) -> Path:
    """``messages/articles/09-tieu-de.md``: the next free number in its folder."""
    directory = config.messages_dir / (folder or _KIND_DIR[kind])
    numbers = (
        [int(p.name[:2]) for p in directory.glob("[0-9][0-9]-*.md")] if directory.exists() else []
    )
    n = max(numbers, default=0) + 1
    base = slugify(title, max_length=50) or kind
    path = directory / f"{n:02d}-{base}.md"
    while path.exists():
        n += 1
        path = directory / f"{n:02d}-{base}.md"
    return path


def add(
    db: Database, config: Config, meta: Mapping[str, Any], body: str, *, actor: str, now: datetime
) -> tuple[Path, LoadReport]:
    kind = str(meta.get("kind", ""))
    if kind not in _KIND_DIR:
        raise InputError("--kind", f"{kind!r} is not a content kind", "slogan or article")
    path = inside(config, new_path(config, kind, str(meta.get("title") or body[:60])), "add")
    text = render_file(meta, body)
    with _folder(path.parent):
        validate(config, path, text, _rel(config, path))
        with _rollback_files([path]):
            write_atomic(path, text)
            report = load(db, config, now, actor, action="add")
    return path, report


def edit(
    db: Database, config: Config, path: Path, text: str, *, actor: str, now: datetime
) -> LoadReport:
    """Replace a content file with ``text`` (validated first) and load it."""
    inside(config, path, "edit")
    validate(config, path, nfc(text), _rel(config, path))
    with _rollback_files([path]):
        write_atomic(path, nfc(text))
        return load(db, config, now, actor, action="edit")


def _rel(config: Config, path: Path) -> str:
    try:
        return str(path.resolve().relative_to(config.path.resolve().parent))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class ImportResult:
    files: list[Path]
    report: LoadReport


def read_csv(path: Path) -> list[tuple[int, dict[str, str]]]:
    """The rows of a CSV file: its row number (the header is row 1) and {column: cell}; a quoted
    cell keeps its line breaks (as ``\n``).
    A row with more cells than the header is a problem naming its row (empty extra cells are
    ignored); every such row is reported at once."""
    try:
        raw = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise InputError(str(path), f"cannot be read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(
            str(path), f"is not UTF-8 (byte {exc.start})", "save it as CSV UTF-8"
        ) from exc
    reader = csv.reader(io.StringIO(raw, newline=""))
    try:
        records = list(reader)
    except csv.Error as exc:
        raise InputError(str(path), f"is not valid CSV (line {reader.line_num}): {exc}") from exc
    header = [h.strip() for h in records[0]] if records else []
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown:
        raise InputError(
            str(path), f"column {unknown[0]!r} is not known", "columns: " + ", ".join(CSV_COLUMNS)
        )
    for required in ("kind", "body"):
        if required not in header:
            raise InputError(
                str(path), f"has no {required!r} column", "columns: " + ", ".join(CSV_COLUMNS)
            )
    rows: list[tuple[int, dict[str, str]]] = []
    problems: list[PublisherError] = []
    for number, record in enumerate(records[1:], start=2):  # row 1 is the header
        if not record:
            continue  # a blank line
        cells = [_cell(c) for c in record]
        if any(cells[len(header) :]):
            problems.append(
                ContentError(
                    f"{path.name}: row {number}",
                    f"has {len(record)} fields, the header has {len(header)}",
                    'quote a cell that contains a comma: "…, …"',
                )
            )
            continue
        cells += [""] * (len(header) - len(cells))
        rows.append((number, dict(zip(header, cells, strict=False))))
    if problems:
        raise Problems(problems)
    return rows


def _cell(value: str) -> str:
    """A cell's text, its line breaks ``\n`` whatever the spreadsheet wrote."""
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


def import_csv(
    db: Database,
    config: Config,
    path: Path,
    *,
    actor: str,
    now: datetime,
    progress: Any = None,
    convert_legacy: bool = False,
) -> ImportResult:
    """Every row becomes a content file under messages/imported/; any bad row → nothing written."""
    rows = read_csv(path)
    if not rows:
        raise InputError(str(path), "has no rows")
    folder = inside(config, config.messages_dir / "imported", "import")
    stem = slugify(path.stem, max_length=30) or "csv"
    with _folder(folder):
        planned = _plan_rows(config, rows, folder, stem, path.name, progress, convert_legacy)
        files = [p for p, _ in planned]
        with _rollback_files(files):
            for p, text in planned:
                write_atomic(p, text)
            report = load(db, config, now, actor, action="import")
    return ImportResult(files, report)


def _plan_rows(
    config: Config,
    rows: list[tuple[int, dict[str, str]]],
    folder: Path,
    stem: str,
    name: str,
    progress: Any,
    convert_legacy: bool,
) -> list[tuple[Path, str]]:
    """Each row's file and text, every one checked as ``load`` would; Problems if any is bad."""
    planned: list[tuple[Path, str]] = []
    problems: list[PublisherError] = []
    taken: set[Path] = set()
    for number, row in rows:
        where = f"{name}: row {number}"
        meta: dict[str, Any] = {
            "kind": row.get("kind", ""),
            "title": row.get("title", ""),
            "summary": row.get("summary", ""),
            "channels": [
                c.strip() for c in row.get("channels", "").replace(";", ",").split(",") if c.strip()
            ],
            "pinned": row.get("pinned", ""),
            "at": row.get("at", ""),
            "cover": row.get("cover", ""),
            "cover_alt": row.get("cover_alt"),
        }
        if meta["kind"] not in _KIND_DIR:
            problems.append(ContentError(where, f"kind is {meta['kind']!r}", "slogan or article"))
            continue
        slug = slugify(str(meta["title"] or row.get("body", ""))[:60], 40) or "post"
        target = folder / f"{stem}-{number:04d}-{slug}.md"
        while target in taken:
            target = target.with_name(target.stem + "-x.md")
        taken.add(inside(config, target, where))
        try:
            text = check_text(render_file(meta, row.get("body", "")), where, convert=convert_legacy)
        except LegacyEncodingError as exc:
            problem = re.sub(r"^line \d+ ", "", exc.problem)  # the row is the place
            problems.append(ContentError(where, problem, exc.hint))
            continue
        try:
            validate(config, target, text, where)
        except ContentError as exc:
            problem = exc.problem.replace("front matter lacks", "lacks column").replace(
                "front matter '", "column '"
            )
            problems.append(ContentError(where, problem, exc.hint, field=exc.field))
            continue
        planned.append((target, text))
        if progress:
            progress(len(planned), len(rows))
    if problems:
        raise Problems(problems)
    return planned


__all__ = ["CSV_COLUMNS", "FIELDS", "ImportResult", "add", "edit", "import_csv", "render_file"]
