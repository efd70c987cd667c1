from __future__ import annotations

import re
import unicodedata
from datetime import date
from pathlib import Path

import pytest

from publisher.config import Config
from publisher.content import read_messages
from publisher.editorial.load import demands_for
from publisher.errors import ContentError
from publisher.plan import plan, rules_from_config

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT.parent / "shared" / "seed" / "ke-hoach-thang-hanh-dong-vi-tre-em-2024.txt"

# §2.2 of the plan, verbatim.
SLOGANS = [
    "Hành động thiết thực, ưu tiên nguồn lực cho trẻ em.",
    "Ưu tiên nguồn lực cho trẻ em để đáp ứng yêu cầu phát triển đất nước phồn vinh, hạnh phúc.",
    "Toàn dân chăm sóc, giáo dục và bảo vệ trẻ em.",
    "Tăng cường chăm sóc, giáo dục và bảo vệ trẻ em vì sự phát triển đất nước phồn vinh, hạnh phúc.",
    "Phòng ngừa và chấm dứt lao động trẻ em vì sự phát triển bền vững.",
    "Phòng, chống tai nạn, thương tích để bảo đảm quyền được sống của trẻ em.",
]


def test_the_six_slogans_are_verbatim_on_the_four_channels(config: Config) -> None:
    messages, problems = read_messages(config)
    assert problems == []
    slogans = [m for m in messages if m.kind == "slogan"]
    assert [m.body for m in slogans] == SLOGANS
    for m in slogans:
        assert m.channels == ("portal_stp", "portal_pbgdpl", "facebook", "zalo")


@pytest.mark.skipif(not SEED.exists(), reason="the plan is in ../shared/seed beside the checkout")
def test_the_slogans_are_those_of_the_plan() -> None:
    plan_lines = [line.removeprefix("- ").strip() for line in SEED.read_text("utf-8").splitlines()]
    for slogan in SLOGANS:
        assert slogan in plan_lines


def test_articles_are_drafts_of_the_right_size_and_shape(config: Config) -> None:
    messages, _ = read_messages(config)
    articles = [m for m in messages if m.kind == "article"]
    assert len(articles) >= 6
    assert len({m.title for m in articles}) == len(articles)
    for m in articles:
        words = len(m.body.split())
        assert 300 <= words <= 900, (m.key, words)
        assert 0 < len(m.summary) <= 300
        assert m.draft is True
        assert m.channels == ("portal_stp", "facebook", "zalo")
        for text in (m.title, m.summary, m.body):
            assert unicodedata.is_normalized("NFC", text)
    pinned = {m.pinned for m in articles}
    assert {date(2024, 6, 12), date(2024, 6, 28)} <= pinned
    everything = " ".join(m.body for m in articles)
    assert "102/2016/QH13" in everything
    assert "111" in everything


def bad(campaign: Path, config: Config, text: str, name: str = "articles/99-bad.md") -> str:
    path = campaign / "messages" / name
    path.write_text(text, encoding="utf-8")
    _, problems = read_messages(config)
    assert len(problems) == 1
    line = str(problems[0])
    assert "\n" not in line
    assert line.startswith(f"messages/{name}: ")
    return line


ARTICLE = """---
kind: article
title: "Tiêu đề"
summary: "Tóm tắt."
channels: [facebook]
---
Nội dung bài viết.
"""


def test_a_good_article_reads(campaign: Path, config: Config) -> None:
    (campaign / "messages" / "articles" / "99-ok.md").write_text(ARTICLE, encoding="utf-8")
    messages, problems = read_messages(config)
    assert problems == []
    m = next(m for m in messages if m.key == "articles/99-ok")
    assert (m.title, m.summary, m.channels, m.body) == (
        "Tiêu đề",
        "Tóm tắt.",
        ("facebook",),
        "Nội dung bài viết.",
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "channels: [facebook]",
            "channels: []",
            "front matter lacks 'channels' (e.g. channels: [portal_stp, portal_pbgdpl])",
        ),
        (
            "channels: [facebook]",
            "channels: [facebook, tiktok]",
            "front matter 'channels' names 'tiktok', not a channel (one of: portal_stp",
        ),
        (
            "kind: article\n",
            "kind: article\nauthor: me\n",
            "front matter 'author' is not a known field (allowed: kind, title",
        ),
        ('title: "Tiêu đề"\n', 'title: "Tiêu đề\n', "front matter is not valid YAML at line"),
        (
            "kind: article",
            "kind: video",
            "front matter 'kind' is 'video' (one of: slogan, article)",
        ),
        (
            "channels: [facebook]",
            "channels: [facebook]\npinned: 2024-07-02",
            "front matter 'pinned' is 2024-07-02, outside the campaign window",
        ),
        (
            "channels: [facebook]",
            "channels: [facebook]\npinned: tomorrow",
            "front matter 'pinned' is 'tomorrow', not a date (e.g. pinned: 2024-06-12, or a key date: thieu_nhi",
        ),
        (
            'summary: "Tóm tắt."',
            'summary: "' + "Dài " * 80 + '"',
            "front matter 'summary' is 319 characters, the limit is 300",
        ),
        ('title: "Tiêu đề"\n', "", "front matter lacks 'title'"),
        ("Nội dung bài viết.\n", "", "has an empty body"),
        (
            "channels: [facebook]",
            "channels: [facebook]\ncover: http://x/a.jpg",
            "front matter 'cover' 'http://x/a.jpg' is not an https:// address",
        ),
    ],
)
def test_bad_front_matter_says_what_and_where(
    campaign: Path, config: Config, old: str, new: str, expected: str
) -> None:
    assert old in ARTICLE
    line = bad(campaign, config, ARTICLE.replace(old, new, 1))
    assert expected in line


def test_without_channels_a_file_gets_its_kinds_default(campaign: Path, config: Config) -> None:
    text = ARTICLE.replace("channels: [facebook]\n", "")
    (campaign / "messages" / "articles" / "99-ok.md").write_text(text, encoding="utf-8")
    messages, _ = read_messages(config)
    m = next(m for m in messages if m.key == "articles/99-ok")
    assert m.channels == config.kinds["article"].channels == ("portal_stp", "facebook", "zalo")


def test_not_utf8_is_refused(campaign: Path, config: Config) -> None:
    path = campaign / "messages" / "articles" / "98-latin1.md"
    path.write_bytes(ARTICLE.encode("cp1258", errors="replace"))
    _, problems = read_messages(config)
    assert len(problems) == 1
    assert "is not UTF-8 text" in str(problems[0])


def test_text_is_normalised_to_nfc(campaign: Path, config: Config) -> None:
    decomposed = unicodedata.normalize("NFD", ARTICLE)
    assert decomposed != ARTICLE
    (campaign / "messages" / "articles" / "97-nfd.md").write_text(decomposed, encoding="utf-8")
    messages, problems = read_messages(config)
    assert problems == []
    m = next(m for m in messages if m.key == "articles/97-nfd")
    assert m.title == "Tiêu đề" and unicodedata.is_normalized("NFC", m.body)


def test_every_bad_file_is_reported(campaign: Path, config: Config) -> None:
    for n in (1, 2):
        (campaign / "messages" / "articles" / f"9{n}-bad.md").write_text("no front matter", "utf-8")
    _, problems = read_messages(config)
    assert [p.path for p in problems] == [
        "messages/articles/91-bad.md",
        "messages/articles/92-bad.md",
    ]
    assert all(isinstance(p, ContentError) for p in problems)


def test_the_hotline_runs_24_hours_a_day_not_24_7() -> None:
    """Not "(miễn phí, 24/7)": it read as a date next to 12/6 and 28/6 (review, issue 17)."""
    shown = [*ROOT.glob("templates/*/*.j2"), *ROOT.glob("messages/**/*.md")]
    shown.append(ROOT / "messages" / "media" / "alt.yaml")
    for path in shown:
        assert "24/7" not in path.read_text("utf-8"), path
    for path in ROOT.glob("templates/*/slogan.j2"):
        words = re.sub(r"<[^>]+>", "", path.read_text("utf-8"))  # the portals' <strong>111</strong>
        assert "111 (miễn phí, 24 giờ mỗi ngày)" in words, path


# The series as article 01 announces it: the words naming each article.
SERIES = {
    "articles/02-quyen-tre-em": "quyền trẻ em theo Luật Trẻ em năm 2016",
    "articles/03-tong-dai-111": "Tổng đài điện thoại quốc gia bảo vệ trẻ em 111",
    "articles/04-phong-chong-bao-luc-xam-hai": "phòng, chống bạo lực, xâm hại trẻ em",
    "articles/05-phong-chong-lao-dong-tre-em": "phòng, chống lao động trẻ em",
    "articles/06-phong-chong-duoi-nuoc": "phòng, chống đuối nước",
    "articles/07-vai-tro-gia-dinh": "vai trò của gia đình",
    "articles/08-quy-bao-tro-tre-em": "Quỹ Bảo trợ trẻ em",
}


def test_article_01_announces_the_series_in_the_order_it_is_posted(config: Config) -> None:
    messages, _ = read_messages(config)
    times = plan(rules_from_config(config), demands_for(config, messages)).times
    first: dict[str, object] = {}
    for (key, _channel, _n), when in sorted(times.items(), key=lambda kv: kv[1]):
        first.setdefault(key, when)
    opening = next(m.body for m in messages if m.key == "articles/01-thang-hanh-dong-2024")
    sentence = opening[opening.index("loạt bài sẽ lần lượt đề cập") :]
    sentence = sentence[: sentence.index(".")]
    announced = sorted(SERIES, key=lambda key: sentence.index(SERIES[key]))
    assert announced == sorted(SERIES, key=list(first).index)


# Findings of the administrative editor's review (issue 17, item 4): what each article must
# say, and the wording it must no longer use.
REVIEW = [
    ("01-thang-hanh-dong-2024", "con em công chức, viên chức, người lao động", "con em cán bộ"),
    ("03-tong-dai-111", "số điện thoại gồm ba chữ số **111**", "ba con số"),
    ("03-tong-dai-111", "người bị nghi ngờ", "người nghi vấn"),
    ("04-phong-chong-bao-luc-xam-hai", "hay bị ép phải giữ bí mật", "bắt giữ bí mật"),
    # Điều 144 BLLĐ 2019 asks for no consent: it is Điều 18 (15–18) and Điều 145 (under 15)
    ("05-phong-chong-lao-dong-tre-em", "(khoản 4 Điều 18)", "người giám hộ và lập sổ"),
    # under 13: a closed list (khoản 3 Điều 145, Thông tư 09/2020/TT-BLĐTBXH), not "như …"
    (
        "05-phong-chong-lao-dong-tre-em",
        "Người chưa đủ 13 tuổi chỉ được làm các công việc",
        ", như các công việc",
    ),
    # Luật GTĐB 2008 bans riding abreast outright; "three or more" is only a decree's fine
    ("06-phong-chong-duoi-nuoc", "không đi xe dàn hàng ngang", "hàng ba"),
    # no number exists to call for the domestic-violence hotline of Điều 19 Luật 13/2022/QH15
    (
        "07-vai-tro-gia-dinh",
        "Công an theo số 113",
        "tổng đài điện thoại quốc gia về phòng, chống bạo lực",
    ),
]


@pytest.mark.parametrize(("name", "says", "not_"), REVIEW)
def test_the_reviewed_wording_stays(name: str, says: str, not_: str) -> None:
    text = (ROOT / "messages" / "articles" / f"{name}.md").read_text("utf-8")
    assert says in text
    assert not_ not in text
