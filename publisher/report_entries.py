"""What the office enters for the report, beside what publisher counts itself: the figures of
§2.4 (children given gifts and awards) and §2.5 (the Quỹ Bảo trợ trẻ em drive), and the passages
of text only people can write (how the month was directed, the assessment, the proposals).

Each entry has a stable key. They come from ``report.toml`` (read by ``publisher load``) or the
web app's form, and are stored in the ``report_entry`` table (``publisher.store.report_entries``);
the report marks each one still missing "[Cần bổ sung]". Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
