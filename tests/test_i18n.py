"""The interface's language: one catalog, complete and compiled; Vietnamese by default, English
with PUBLISHER_LANG=en, anything else refused in one line."""

from __future__ import annotations

import gettext
import io
import re
import string
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from publisher import i18n
from publisher.i18n import LanguageError, _, current_language, language_from, use_language
from tests.fakes import daemon_env, run

ROOT = Path(__file__).resolve().parents[1]
PO = i18n.catalog_path("vi", ".po")
MO = i18n.catalog_path("vi")


def catalog() -> Catalog:
    with PO.open("rb") as fh:
        return read_po(fh, locale="vi", domain=i18n.DOMAIN)


def code_msgids() -> set[str]:
    """Every msgid in the package's code, found as ``pybabel extract`` finds them."""
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        ROOT / "publisher",
        method_map=[("**.py", "python"), ("**/web/templates/**.html", "jinja2.ext:babel_extract")],
        keywords=keywords,
    ):
        found.update([message] if isinstance(message, str) else message)
    return found


def placeholders(text: str) -> set[str]:
    """The ``%(name)s`` fields of the web app's msgids (Jinja's gettext style)."""
    return set(re.findall(r"%\((\w+)\)s", text))


def fields(text: str) -> set[str]:
    return {name for _lit, name, _spec, _conv in string.Formatter().parse(text) if name}


# The catalog


def test_the_compiled_catalog_is_the_po_file_compiled() -> None:
    compiled = io.BytesIO()
    write_mo(compiled, catalog())
    assert MO.read_bytes() == compiled.getvalue(), (
        "run: pybabel compile -d publisher/locale -D publisher"
    )


def test_every_text_in_the_code_has_a_vietnamese_translation() -> None:
    translated: dict[str, object] = {}
    for m in catalog():
        if not m.id:
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)  # a plural: both forms are msgids
        forms = m.string if isinstance(m.string, tuple) else (m.string,)
        translated.update(dict.fromkeys(ids, all(forms) and forms))
    in_code = code_msgids()
    assert len(in_code) > 100
    missing = sorted(m for m in in_code if not translated.get(m))
    assert missing == [], "add these to publisher/locale/vi/LC_MESSAGES/publisher.po"
    assert sorted(set(translated) - in_code) == [], "msgids no longer in the code"


def test_translations_keep_every_field_and_are_nfc_vietnamese() -> None:
    for m in catalog():
        if not m.id:
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        forms = m.string if isinstance(m.string, tuple) else (m.string,)
        assert all(isinstance(x, str) for x in (*ids, *forms)), m.id
        for form in forms:  # Vietnamese has one plural form
            assert fields(form) == fields(ids[0]), m.id
            assert placeholders(form) == placeholders(ids[0]), m.id
            assert unicodedata.normalize("NFC", form) == form, m.id
        assert not m.fuzzy, m.id


def test_the_po_file_is_utf8_with_one_plural_form() -> None:
    text = PO.read_text("utf-8")
    assert '"Plural-Forms: nplurals=1; plural=0;\\n"' in text
    assert "Đã nạp {files} tệp nội dung" in text


# The language chosen


@pytest.mark.parametrize(
    ("env", "language"),
    [
        ({}, "vi"),
        ({"PUBLISHER_LANG": ""}, "vi"),
        ({"PUBLISHER_LANG": "vi"}, "vi"),
        ({"PUBLISHER_LANG": "en"}, "en"),
        ({"PUBLISHER_LANG": " EN "}, "en"),
        ({"LANG": "en_US.UTF-8", "LC_ALL": "en_US.UTF-8"}, "vi"),  # the locale is not read
        ({"LANG": "en_US.UTF-8", "PUBLISHER_LANG": "en"}, "en"),
    ],
)
def test_publisher_lang_chooses_and_vietnamese_is_the_default(
    env: dict[str, str], language: str
) -> None:
    assert language_from(env) == language


@pytest.mark.parametrize("value", ["fr", "vi_VN", "english", "1"])
def test_any_other_language_is_refused_in_one_line(value: str) -> None:
    with pytest.raises(LanguageError) as caught:
        language_from({"PUBLISHER_LANG": value})
    said = str(caught.value)
    assert "\n" not in said
    assert said.startswith(f"PUBLISHER_LANG: {value!r} is not a language")
    assert "PUBLISHER_LANG=vi" in said and "PUBLISHER_LANG=en" in said


def test_use_language_forces_one_for_a_block(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLISHER_LANG", "en")
    assert current_language() == "en"
    assert _("No change.") == "No change."
    with use_language("vi"):
        assert current_language() == "vi"
        assert _("No change.") == "Không có thay đổi."
        with use_language("en"):
            assert _("No change.") == "No change."
        assert i18n.ngettext("{n} post", "{n} posts", 2) == "{n} posts"  # not in the catalog
    assert current_language() == "en"
    with pytest.raises(ValueError, match="'fr' is not one of vi, en"), use_language("fr"):
        pass


def test_translations_serve_jinja2() -> None:
    import jinja2

    assert isinstance(i18n.translations("vi"), gettext.GNUTranslations)
    assert type(i18n.translations("en")) is gettext.NullTranslations
    env = jinja2.Environment(extensions=["jinja2.ext.i18n"], autoescape=True)
    env.install_gettext_translations(i18n.translations("vi"), newstyle=True)  # type: ignore[attr-defined]
    page = env.from_string("{{ _('Rehearsal summary') }} · {{ _('Wrote {file}.') }}")
    assert page.render() == "Tổng hợp kết quả diễn tập · Đã ghi {file}."


# What a user sees


@pytest.fixture
def vietnamese(monkeypatch: pytest.MonkeyPatch) -> None:
    """No PUBLISHER_LANG, and an English locale: what the Department's machines may have."""
    monkeypatch.delenv("PUBLISHER_LANG")
    monkeypatch.setenv("LANG", "en_US.UTF-8")


def test_load_and_approve_speak_vietnamese_by_default(campaign: Path, vietnamese: None) -> None:
    loaded = run("load", "--as", "vanphong")
    assert loaded.exit_code == 0, loaded.output
    assert loaded.stdout.startswith(
        "Đã nạp 14 tệp nội dung từ messages/: 14 tệp mới, 0 tệp thay đổi, 0 tệp bị xóa, "
        "0 tệp không đổi.\nBài đăng: tạo mới 72,"
    )
    approved = run("approve", "--all")
    assert approved.exit_code == 0, approved.output
    assert approved.stdout == "Đã duyệt 72 bài (người duyệt: Lê Anh Tuấn).\n"
    status = run("status")
    assert "Bài theo trạng thái và kênh" in status.stdout
    assert "đã duyệt" in status.stdout and "tất cả" in status.stdout
    assert "tiến trình đăng bài: KHÔNG CHẠY" in status.stdout
    shown = run("queue", "show", "3")
    assert shown.stdout.startswith("Bài 3 · Zalo OA Sở Tư pháp · bài viết · đã duyệt · 2024-06-01")
    assert "--- lịch sử ---" in shown.stdout and "nháp → đã duyệt" in shown.stdout


def test_errors_keep_their_shape_in_vietnamese(campaign: Path, vietnamese: None) -> None:
    result = run("preview", "--channel", "tiktok")
    assert result.exit_code == 1
    assert result.stderr == (
        "lỗi: --channel: 'tiktok' không phải là kênh "
        "(chọn một trong: portal_stp, portal_pbgdpl, facebook, zalo)\n"
    )


def test_publisher_lang_en_speaks_english(campaign: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLISHER_LANG", "en")
    assert run("load", "--as", "vanphong").stdout.startswith(
        "Loaded 14 content files from messages/: 14 new,"
    )
    assert run("approve", "--all").stdout == "Approved 72 post(s) as Lê Anh Tuấn.\n"


def test_a_language_publisher_does_not_speak_stops_every_command(campaign: Path) -> None:
    child = subprocess.run(
        [sys.executable, "-m", "publisher", "load"],
        capture_output=True,
        text=True,
        env=daemon_env(PUBLISHER_LANG="fr"),
    )
    assert child.returncode == 1
    assert child.stdout == ""
    assert child.stderr == (
        "error: PUBLISHER_LANG: 'fr' is not a language publisher speaks (set PUBLISHER_LANG=vi "
        "for Vietnamese, the default, or PUBLISHER_LANG=en for English)\n"
    )
    assert not (campaign / "publisher.db").exists()  # nothing done


def test_a_child_process_speaks_vietnamese_without_publisher_lang(campaign: Path) -> None:
    env = daemon_env()
    del env["PUBLISHER_LANG"]
    child = subprocess.run(
        [sys.executable, "-m", "publisher", "check"], capture_output=True, text=True, env=env
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.endswith(
        "lịch: xếp được 72 trên 72 bài vào lịch\nĐạt: không phát hiện lỗi nào.\n"
    )
