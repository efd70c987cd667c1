from __future__ import annotations

import hashlib
import json
import os
import unicodedata
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.config import Config
from publisher.content import Message, read_messages
from publisher.errors import LimitError, TemplateError
from publisher.render import Renderer, fields_hash, markdown_plain

GOLDEN = Path(__file__).resolve().parent / "golden"
DATA = Path(__file__).resolve().parent / "data" / "messages"
UPDATE = os.environ.get("PUBLISHER_UPDATE_GOLDEN") == "1"


@pytest.fixture
def test_config(config: Config) -> Config:
    """The shipped config and templates, reading the fixed test messages in tests/data (whose
    default cover is a small picture of their own)."""
    media = replace(config.media, default_cover="media/bia.jpg")
    return replace(config, messages_dir=DATA, media=media)


def test_golden_renders_per_channel(test_config: Config) -> None:
    messages, problems = read_messages(test_config)
    assert problems == []
    renderer = Renderer(test_config)
    seen = 0
    for m in messages:
        for cid in m.channels:
            r = renderer.render(m, cid)
            name = f"{m.key.replace('/', '__')}__{cid}.json"
            actual = json.dumps(dict(r.fields), ensure_ascii=False, indent=2, sort_keys=True) + "\n"
            for value in r.fields.values():
                assert unicodedata.is_normalized("NFC", value)
            if UPDATE:
                (GOLDEN / name).write_text(actual, encoding="utf-8")
            assert (GOLDEN / name).read_text(encoding="utf-8") == actual, (
                f"{name} differs: run PUBLISHER_UPDATE_GOLDEN=1 pytest tests/test_render.py "
                "and review the diff"
            )
            seen += 1
    assert seen == 7


def _message(config: Config, key: str) -> Message:
    messages, _ = read_messages(config)
    return next(m for m in messages if m.key == key)


def test_slogan_text_is_verbatim_in_every_render(test_config: Config) -> None:
    m = _message(test_config, "slogans/01-thu")
    renderer = Renderer(test_config)
    for cid in m.channels:
        assert "Toàn dân chăm sóc, giáo dục và bảo vệ trẻ em." in renderer.render(m, cid).text


def test_portal_escapes_html_and_plain_channels_do_not(test_config: Config) -> None:
    m = _message(test_config, "articles/01-thu")
    renderer = Renderer(test_config)
    portal = renderer.render(m, "portal_stp")
    assert "<script>" not in portal.text
    assert "&lt;script&gt;" in portal.text
    assert portal.fields["title"].endswith("&amp; &lt;trách nhiệm&gt;")
    assert "<strong>01/6/2017</strong>" in portal.text
    assert "<h2>Các quyền cơ bản</h2>" in portal.text
    fb = renderer.render(m, "facebook")
    assert "& <TRÁCH NHIỆM>" in fb.text
    assert "**" not in fb.text and "##" not in fb.text
    assert "• Quyền sống;" in fb.text


def test_render_hash_follows_the_text(test_config: Config) -> None:
    m = _message(test_config, "slogans/01-thu")
    renderer = Renderer(test_config)
    a = renderer.render(m, "zalo")
    c = renderer.render(replace(m, body="Khác."), "zalo")
    assert a.hash == renderer.render(m, "zalo").hash
    assert a.hash != c.hash


def test_the_hash_format_is_the_sha256_of_sorted_json() -> None:
    """Stored approvals bind this hash: it stays the SHA-256 of ``json.dumps(fields,
    ensure_ascii=False, sort_keys=True)`` in UTF-8, whatever writes that text."""
    fields = {
        "title": 'Tháng "hành động"\\ vì trẻ em',
        "body": "Dòng 1\nDòng 2\t\x01\u2028",
        "media": '[{"alt": "Ảnh", "role": "cover"}]',
        "link": "",
    }
    # the exact text hashed, written out (not produced by json here): keys sorted, ", " and
    # ": " between items, only what JSON must escape escaped (\u2028 left as it is)
    canonical = (
        '{"body": "Dòng 1\\nDòng 2\\t\\u0001\u2028", "link": "", '
        '"media": "[{\\"alt\\": \\"Ảnh\\", \\"role\\": \\"cover\\"}]", '
        '"title": "Tháng \\"hành động\\"\\\\ vì trẻ em"}'
    )
    pinned = hashlib.sha256(canonical.encode()).hexdigest()
    assert fields_hash(fields) == pinned
    assert fields_hash(dict(reversed(fields.items()))) == pinned
    for other in (fields | {"media": ""}, {"a": 1, "b": None}, {}, {"x": "\x7f\ud7ff😀"}):
        canonical = json.dumps(other, ensure_ascii=False, sort_keys=True)
        assert fields_hash(other) == hashlib.sha256(canonical.encode()).hexdigest()


@given(st.dictionaries(st.sampled_from(["media", "title", "body", "é", ""]) | st.text(), st.text()))
@settings(max_examples=300, deadline=None)
def test_the_hash_of_any_text_fields_is_that_of_their_json(fields: dict[str, str]) -> None:
    canonical = json.dumps(fields, ensure_ascii=False, sort_keys=True)
    assert fields_hash(fields) == hashlib.sha256(canonical.encode()).hexdigest()


def test_zalo_title_limit_names_post_channel_and_limit(test_config: Config) -> None:
    m = _message(test_config, "articles/01-thu")
    long_title = "Ả" * 150  # 150 characters in NFC, more in NFD: Zalo refuses exactly 150
    with pytest.raises(LimitError) as info:
        Renderer(test_config).render(replace(m, title=long_title), "zalo")
    assert info.value.limit == 149 and info.value.length == 150
    assert str(info.value).endswith(
        "articles/01-thu.md on zalo: title is 150 characters, the limit is 149 (Zalo refuses "
        "titles of 150 characters or more; shorten it in the content file or the template)"
    )
    # 149 characters pass, counted on NFC even if the code points were decomposed
    ok = unicodedata.normalize("NFD", "Ả" * 149)
    assert len(ok) == 298
    Renderer(test_config).render(replace(m, title=ok), "zalo")


def _template(config: Config, channel: str, kind: str, text: str) -> None:
    path = config.templates_dir / channel / f"{kind}.j2"
    path.write_text(text, encoding="utf-8")


def test_undefined_variable_is_an_error_not_blank(test_config: Config) -> None:
    _template(
        test_config, "facebook", "slogan", "{% block message %}{{ message.bodyy }}{% endblock %}"
    )
    m = _message(test_config, "slogans/01-thu")
    with pytest.raises(TemplateError) as info:
        Renderer(test_config).render(m, "facebook")
    assert str(info.value).startswith("templates/facebook/slogan.j2: ")
    assert "bodyy" in str(info.value)


def test_templates_are_sandboxed(test_config: Config) -> None:
    _template(
        test_config,
        "facebook",
        "slogan",
        "{% block message %}{{ message.__class__.__mro__[1].__subclasses__() }}{% endblock %}",
    )
    m = _message(test_config, "slogans/01-thu")
    with pytest.raises(TemplateError, match="unsafe|undefined"):
        Renderer(test_config).render(m, "facebook")


def test_unknown_block_and_syntax_error_and_missing_template(test_config: Config) -> None:
    m = _message(test_config, "slogans/01-thu")
    _template(test_config, "zalo", "slogan", "{% block headline %}x{% endblock %}")
    with pytest.raises(TemplateError, match="block 'headline' is not a field of a zalo post"):
        Renderer(test_config).render(m, "zalo")
    _template(test_config, "zalo", "slogan", "{% block title %}{{ x {% endblock %}")
    with pytest.raises(TemplateError, match=r"templates/zalo/slogan.j2: line 1: "):
        Renderer(test_config).render(m, "zalo")
    (test_config.templates_dir / "zalo" / "slogan.j2").unlink()
    with pytest.raises(TemplateError, match="templates/zalo/slogan.j2: does not exist"):
        Renderer(test_config).render(m, "zalo")


def test_markdown_plain_text() -> None:
    text = "Mở đầu **đậm**\nnối dòng.\n\n## Mục\n\n1. Một\n2. Hai\n\n- a\n  - b\n\nKết."
    assert (
        markdown_plain(text)
        == "Mở đầu đậm nối dòng.\n\nMục\n\n1. Một\n2. Hai\n\n• a\n  • b\n\nKết."
    )


def test_a_lasting_renderer_sees_the_default_cover_change(config: Config) -> None:
    """The default cover is checked and prepared once per renderer, not per post, but a
    daemon's renderer lives for days: a new file is a new render (its hash changes, so the
    approval no longer holds) and a removed one is an error, as for a new renderer."""
    from PIL import Image

    from publisher.errors import ConfigError

    messages, _ = read_messages(config)
    m = next(m for m in messages if m.cover is None and "facebook" in m.channels)
    renderer = Renderer(config)
    first = renderer.render(m, "facebook")
    assert renderer.render(m, "facebook").fields == first.fields
    path = config.messages_dir / config.media.default_cover
    Image.new("RGB", (640, 360), "red").save(path, "JPEG")
    second = renderer.render(m, "facebook")
    assert second.hash != first.hash
    assert second.fields == Renderer(config).render(m, "facebook").fields
    path.unlink()
    with pytest.raises(ConfigError, match="does not exist"):
        renderer.render(m, "facebook")


def test_a_batch_reads_the_pictures_once_and_renders_the_same(config: Config) -> None:
    """``render_all`` renders in a batch: each set of pictures is read once in it (the files
    as they were then), the renders are those made one by one, and after the batch a
    changed cover is seen again."""
    from PIL import Image

    messages, _ = read_messages(config)
    m = next(m for m in messages if m.cover is None and "facebook" in m.channels)
    renderer = Renderer(config)
    alone = {cid: Renderer(config).render(m, cid) for cid in m.channels}
    with renderer.batch():
        first = {cid: renderer.render(m, cid) for cid in m.channels}
        path = config.messages_dir / config.media.default_cover
        Image.new("RGB", (640, 360), "red").save(path, "JPEG")
        again = renderer.render(m, "facebook")
    assert {cid: r.fields for cid, r in first.items()} == {c: r.fields for c, r in alone.items()}
    assert again.fields == first["facebook"].fields  # the batch's pictures
    after = renderer.render(m, "facebook")
    assert after.hash != first["facebook"].hash
    assert after.fields == Renderer(config).render(m, "facebook").fields
