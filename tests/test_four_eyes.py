"""Four eyes (nobody approves a text they changed last) and approval in steps
(``[board] approval_steps``): the post is approved, and may go out, only when every step has
approved its current text, each by another member."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from publisher.clock import FakeClock
from publisher.config import Config, load_config
from publisher.config.board import NotAllowed, authorize, authorize_account
from publisher.config.model import ApprovalRules
from publisher.dispatch.dispatcher import Dispatcher
from publisher.editorial.actions import reject
from publisher.editorial.load import approve, load
from publisher.errors import ConfigError
from publisher.states import State
from publisher.store import audit
from publisher.store.approvals import read_awaiting, read_progress
from publisher.store.db import Database
from publisher.store.models import AuditEntry, PostRow
from tests.fakes import FakePlatform, run

T0 = datetime(2024, 5, 30, 0, 0, tzinfo=UTC)
DRAFTER, EDITOR, EDITOR2 = "Văn phòng Sở", "Ban biên tập", "Phòng PB&TDTHPL"
APPROVER = "Lê Anh Tuấn"
TWO = ApprovalRules(steps=("editor", "approver"))
ARTICLE = "articles/03-tong-dai-111"


def first_post(db: Database, message: str = ARTICLE, channel: str = "facebook") -> PostRow:
    with db.read() as s:
        q = select(PostRow).join(PostRow.message).where(PostRow.channel == channel)
        return next(p for p in s.scalars(q.order_by(PostRow.id)) if p.message.key == message)


def edit_article(config: Config, old: str, new: str) -> None:
    path = config.messages_dir / f"{ARTICLE}.md"
    body = path.read_text("utf-8")
    assert old in body
    path.write_text(body.replace(old, new, 1), "utf-8")


@pytest.fixture
def loaded(db: Database, config: Config) -> Database:
    load(db, config, T0, DRAFTER)
    return db


def test_the_load_that_writes_a_text_is_its_author(loaded: Database, config: Config) -> None:
    p = first_post(loaded)
    assert p.text_by == DRAFTER
    load(loaded, config, T0, EDITOR)  # nothing changed: the author stays
    assert first_post(loaded).text_by == DRAFTER
    edit_article(config, "Tổng đài", "Tổng đài điện thoại")
    load(loaded, config, T0, EDITOR)
    assert first_post(loaded).text_by == EDITOR


def test_the_last_changer_cannot_approve(loaded: Database) -> None:
    p = first_post(loaded)
    report = approve(loaded, [p.id], everything=False, actor=DRAFTER, now=T0)
    assert report.approved == []
    [(pid, why)] = report.refused
    assert pid == p.id
    assert f"{DRAFTER} changed its text last" in why and "four eyes" in why
    assert first_post(loaded).state == State.DRAFT
    # names compare as the board compares them: another case, spacing or Unicode form
    other_form = " VĂN PHÒNG   SỞ "
    assert approve(loaded, [p.id], everything=False, actor=other_form, now=T0).refused
    # another member may
    assert approve(loaded, [p.id], everything=False, actor=APPROVER, now=T0).approved == [p.id]
    assert first_post(loaded).state == State.APPROVED


def test_four_eyes_off_lets_the_changer_approve(loaded: Database) -> None:
    p = first_post(loaded)
    rules = ApprovalRules(four_eyes=False)
    report = approve(loaded, [p.id], everything=False, actor=DRAFTER, now=T0, rules=rules)
    assert report.approved == [p.id] and report.refused == []


def test_a_post_from_before_four_eyes_has_no_author_to_refuse(loaded: Database) -> None:
    p = first_post(loaded)
    with loaded.engine.begin() as conn:  # as migration 0006 leaves the rows it finds
        conn.execute(text("UPDATE post SET text_by = NULL WHERE id = :id"), {"id": p.id})
    assert approve(loaded, [p.id], everything=False, actor=DRAFTER, now=T0).approved == [p.id]


def test_two_steps_editor_then_approver(loaded: Database) -> None:
    p = first_post(loaded)
    step1 = approve(
        loaded, [p.id], everything=False, actor=EDITOR, now=T0, rules=TWO, role="editor"
    )
    assert step1.approved == [] and step1.refused == []
    [taken] = step1.steps
    assert (taken.post_id, taken.step, taken.number, taken.of, taken.waiting_for) == (
        p.id,
        "editor",
        1,
        2,
        "approver",
    )
    assert str(taken) == "approved as editor (step 1 of 2), waiting for the approver step"
    assert first_post(loaded).state == State.DRAFT
    # another editor cannot take the approver's step
    other = approve(
        loaded, [p.id], everything=False, actor=EDITOR2, now=T0, rules=TWO, role="editor"
    )
    assert other.refused == [
        (p.id, "it waits for the approver step (2 of 2): the editor role cannot take it")
    ]
    later = T0 + timedelta(hours=1)
    step2 = approve(
        loaded, [p.id], everything=False, actor=APPROVER, now=later, rules=TWO, role="approver"
    )
    assert step2.approved == [p.id] and step2.steps == []
    after = first_post(loaded)
    assert after.state == State.APPROVED
    assert (after.approved_by, after.approved_at) == (APPROVER, later)
    progress = read_progress(loaded, p.id, TWO.steps)
    assert progress is not None and progress.pending == ()
    assert [(a.step, a.actor) for a in progress.done] == [
        ("editor", EDITOR),
        ("approver", APPROVER),
    ]
    with loaded.read() as s:
        actions = list(
            s.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.post_id == p.id, AuditEntry.action.like("approve%"))
                .order_by(AuditEntry.id)
            )
        )
    assert actions == ["approve_step", "approve"]
    assert audit.verify(loaded).ok


def test_what_each_draft_waits_for(loaded: Database, config: Config) -> None:
    p = first_post(loaded)
    approve(loaded, [p.id], everything=False, actor=EDITOR, now=T0, rules=TWO, role="editor")
    awaiting = read_awaiting(loaded, TWO.steps)
    assert awaiting[p.id].next_step == "approver"
    assert [a.actor for a in awaiting[p.id].done] == [EDITOR]
    others = {pid: a.next_step for pid, a in awaiting.items() if pid != p.id}
    assert others and set(others.values()) == {"editor"}
    edit_article(config, "Tổng đài", "Tổng đài điện thoại")
    load(loaded, config, T0, DRAFTER)
    assert read_awaiting(loaded, TWO.steps)[p.id].next_step == "editor"


def test_an_approver_alone_takes_one_step_and_never_two(loaded: Database) -> None:
    p = first_post(loaded)
    first = approve(
        loaded, [p.id], everything=False, actor=APPROVER, now=T0, rules=TWO, role="approver"
    )
    assert [(t.step, t.waiting_for) for t in first.steps] == [("editor", "approver")]
    assert first_post(loaded).state == State.DRAFT
    again = approve(
        loaded, [p.id], everything=False, actor=APPROVER, now=T0, rules=TWO, role="approver"
    )
    [(_, why)] = again.refused
    assert why == (
        f"{APPROVER} already approved it as editor (step 1 of 2); "
        "another member must take the approver step"
    )
    assert first_post(loaded).state == State.DRAFT


def test_four_eyes_applies_to_every_step(db: Database, config: Config) -> None:
    load(db, config, T0, EDITOR)
    p = first_post(db)
    own = approve(db, [p.id], everything=False, actor=EDITOR, now=T0, rules=TWO, role="editor")
    assert own.steps == [] and "four eyes" in own.refused[0][1]
    approve(db, [p.id], everything=False, actor=EDITOR2, now=T0, rules=TWO, role="editor")
    assert approve(
        db, [p.id], everything=False, actor=EDITOR, now=T0, rules=TWO, role="approver"
    ).refused


def test_an_edit_between_the_steps_voids_the_first(loaded: Database, config: Config) -> None:
    p = first_post(loaded)
    approve(loaded, [p.id], everything=False, actor=EDITOR, now=T0, rules=TWO, role="editor")
    edit_article(config, "Tổng đài", "Tổng đài điện thoại")
    report = load(loaded, config, T0, DRAFTER)
    assert p.id in report.revoked
    progress = read_progress(loaded, p.id, TWO.steps)
    assert progress is not None and progress.done == () and progress.pending == TWO.steps
    # the approver now takes the first step of the new text, not the last: not approved
    step = approve(
        loaded, [p.id], everything=False, actor=APPROVER, now=T0, rules=TWO, role="approver"
    )
    assert [t.step for t in step.steps] == ["editor"] and step.approved == []
    # and putting the old text back does not bring the old step back
    edit_article(config, "Tổng đài điện thoại", "Tổng đài")
    load(loaded, config, T0, DRAFTER)
    progress = read_progress(loaded, p.id, TWO.steps)
    assert progress is not None and progress.done == ()


def test_a_rejection_voids_the_steps_taken(loaded: Database, config: Config) -> None:
    p = first_post(loaded)
    approve(loaded, [p.id], everything=False, actor=EDITOR, now=T0, rules=TWO, role="editor")
    reject(loaded, [p.id], actor=APPROVER, now=T0, reason="Sai số điện thoại")
    progress = read_progress(loaded, p.id, TWO.steps)
    assert progress is not None and progress.done == ()


def test_a_post_with_only_its_first_step_is_never_sent(loaded: Database, config: Config) -> None:
    clock = FakeClock(T0)
    platforms = {cid: FakePlatform(cid, clock.now) for cid in config.channels}
    approve(loaded, [], everything=True, actor=EDITOR, now=T0, rules=TWO, role="editor")
    with loaded.read() as s:
        drafts = list(s.scalars(select(PostRow).where(PostRow.due_at.is_not(None))))
    assert drafts and {p.state for p in drafts} == {State.DRAFT}
    last = max(p.due_at for p in drafts if p.due_at is not None)
    clock.set(last + timedelta(minutes=1))
    dispatcher = Dispatcher(
        loaded,
        platforms,  # type: ignore[arg-type]
        clock,
        worker="w1",
        rng=random.Random(1),  # noqa: S311 - jitter in tests
    )
    try:
        report = dispatcher.run_once()
        dispatcher.drain()
    finally:
        dispatcher.close()
    assert report.claimed == 0
    assert all(platform.calls == [] for platform in platforms.values())
    with loaded.read() as s:
        assert set(s.scalars(select(PostRow.state))) <= {State.DRAFT, State.CANCELLED}


def test_a_step_of_the_editor_lets_editors_approve(config: Config) -> None:
    with pytest.raises(NotAllowed, match="needs the approver role"):
        authorize(config, "bientap", "approve")
    two = replace(config, approval=TWO)
    assert authorize(two, "bientap", "approve") == EDITOR
    with pytest.raises(NotAllowed) as info:
        authorize(two, "vanphong", "approve")
    assert str(info.value) == (
        "--as vanphong: Văn phòng Sở is a drafter: approving posts needs the editor role "
        f"(members who may: {EDITOR}, {APPROVER}, {EDITOR2})"
    )
    boardless = replace(two, board={})
    assert authorize_account(boardless, "an", "editor", "approve") == "an"
    with pytest.raises(NotAllowed):
        authorize_account(replace(config, board={}), "an", "editor", "approve")


def test_the_shipped_config_has_four_eyes_and_one_step(config: Config) -> None:
    assert config.approval == ApprovalRules(four_eyes=True, steps=("approver",))


SHIPPED = (Path(__file__).resolve().parents[1] / "config.toml").read_text("utf-8")


def with_board(campaign: Path, lines: str) -> Path:
    """The shipped config with ``lines`` at the top of its ``[board]``."""
    path = campaign / "config.toml"
    shipped = SHIPPED
    assert "\n[board]\n" in shipped
    path.write_text(shipped.replace("\n[board]\n", f"\n[board]\n{lines}\n", 1), "utf-8")
    return path


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            "four_eyes = 1",
            "board.four_eyes: must be true or false, not an integer",
        ),
        (
            'approval_steps = "approver"',
            "board.approval_steps: must be a list, not a string",
        ),
        (
            "approval_steps = []",
            'board.approval_steps: must list at least one step (e.g. approval_steps = ["editor", '
            '"approver"])',
        ),
        (
            'approval_steps = ["drafter", "approver"]',
            "board.approval_steps[0]: 'drafter' is not a role that approves (each step is one "
            "of: editor, approver)",
        ),
        (
            'approval_steps = ["editor", "chief"]',
            "board.approval_steps[1]: 'chief' is not a role that approves (each step is one of: "
            "editor, approver)",
        ),
        (
            "approval_steps = [2]",
            "board.approval_steps[0]: an integer is not a role that approves (each step is one "
            "of: editor, approver)",
        ),
        (
            'approval_steps = ["approver", "approver"]',
            "board.approval_steps[1]: 'approver' is given twice (each role once)",
        ),
        (
            'approval_steps = ["approver", "editor"]',
            "board.approval_steps[1]: the editor step comes after the approver step (order the "
            'steps from the lower role to the higher: e.g. approval_steps = ["editor", '
            '"approver"])',
        ),
    ],
)
def test_bad_approval_rules_are_refused_in_one_line(
    campaign: Path, lines: str, expected: str
) -> None:
    path = with_board(campaign, lines)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.line() == f"{path}: {expected}"
    out = run("approve", "--all", "--as", "tuan.la")
    assert out.exit_code == 1
    assert out.stderr == f"error: config.toml: {expected}\n"


def test_good_approval_rules_are_read(campaign: Path) -> None:
    path = with_board(campaign, 'four_eyes = false\napproval_steps = ["editor", "approver"]')
    assert load_config(path).approval == ApprovalRules(False, ("editor", "approver"))
    path = with_board(campaign, 'approval_steps = ["editor"]')
    assert load_config(path).approval == ApprovalRules(True, ("editor",))


def test_the_cli_refuses_the_changer_and_says_each_step(campaign: Path) -> None:
    assert run("load", "--as", "tuan.la").exit_code == 0
    own = run("approve", "1", "--as", "tuan.la")
    assert own.exit_code == 1
    assert own.stderr == (
        f"post 1 not approved: {APPROVER} changed its text last, so another member must approve "
        "it (four eyes)\n"
    )
    everything = run("approve", "--all", "--as", "tuan.la")
    assert everything.exit_code == 0 and "Approved 0 post(s)" in everything.stdout

    with_board(campaign, 'approval_steps = ["editor", "approver"]')
    step = run("approve", "1", "2", "--as", "bientap")
    assert step.exit_code == 0, step.stderr
    assert step.stdout == (
        f"Approved 0 post(s) as {EDITOR}.\n"
        f"Recorded 2 approval step(s) as {EDITOR}, not yet approved:\n"
        "  post 1: approved as editor (step 1 of 2), waiting for the approver step\n"
        "  post 2: approved as editor (step 1 of 2), waiting for the approver step\n"
    )
    shown = run("queue", "show", "1", "--json")
    steps = json.loads(shown.stdout)["steps"]
    assert steps["required"] == ["editor", "approver"] and steps["pending"] == ["approver"]
    assert [(d["step"], d["by"]) for d in steps["done"]] == [("editor", EDITOR)]
    assert "Waiting for: approver" in run("queue", "show", "1").stdout
    # the approver loaded the posts: four eyes stop them; pbgdpl, an editor, cannot either
    assert run("approve", "1", "--as", "tuan.la").exit_code == 1
    editor2 = run("approve", "1", "--as", "pbgdpl")
    assert editor2.exit_code == 1 and "the editor role cannot take it" in editor2.stderr

    with_board(campaign, 'four_eyes = false\napproval_steps = ["editor", "approver"]')
    done = run("approve", "1", "--as", "tuan.la")
    assert done.exit_code == 0, done.stderr
    assert done.stdout == f"Approved 1 post(s) as {APPROVER}.\n  post 1: approved\n"
    shown = run("queue", "show", "1")
    assert "Approval step 1 of 2 (editor): Ban biên tập" in shown.stdout
    assert "Approval step 2 of 2 (approver): Lê Anh Tuấn" in shown.stdout
    assert "Waiting for" not in shown.stdout
