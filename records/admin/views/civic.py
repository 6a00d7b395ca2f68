"""Resident proposals and votes; a vote's tally is shown only once it has closed."""

# sqladmin configures views through class-level lists and dicts, never mutated.
# ruff: noqa: RUF012

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.requests import Request

from records.admin.base import Access, ConsoleContext, ConsoleModelView, Lookups, looked_up
from records.admin.views.common import CREATED_AT, ID, due, ids_of, lookup, resident_names
from records.models import Ballot, Proposal, ProposalStatus, StaffRole, Vote

CIVIC = "议事与投票"

TALLY_HIDDEN = "投票进行中，结束后公布"
NOT_OPEN = "投票尚未开始"

_ANSWERED = frozenset(
    {ProposalStatus.answered, ProposalStatus.closed, ProposalStatus.rejected, ProposalStatus.voting}
)


class ProposalView(ConsoleModelView, model=Proposal):
    """Proposals with their support and the deadline for an answer (read-only)."""

    name = "居民提案"
    name_plural = "居民提案"
    icon = "fa-solid fa-lightbulb"
    category = CIVIC
    access = {StaffRole.grid_worker: Access.read}
    can_create = can_edit = can_delete = False

    column_list = [
        Proposal.id,
        Proposal.title,
        Proposal.status,
        Proposal.support_count,
        Proposal.support_threshold,
        Proposal.answer_due_at,
        Proposal.created_at,
    ]
    column_details_list = [
        *column_list,
        Proposal.content,
        "author",
        Proposal.review_note,
        Proposal.published_at,
        Proposal.threshold_reached_at,
        Proposal.answer,
        Proposal.answered_at,
        Proposal.closed_at,
        Proposal.vote_id,
    ]
    column_searchable_list = [Proposal.title]
    column_sortable_list = [Proposal.id, Proposal.support_count, Proposal.answer_due_at]
    column_default_sort = ("id", True)
    column_labels = {
        "id": ID,
        "title": "标题",
        "status": "状态",
        "support_count": "支持人数",
        "support_threshold": "所需支持",
        "answer_due_at": "答复期限",
        "created_at": "提交时间",
        "content": "内容",
        "author": "提案人",
        "review_note": "审核意见",
        "published_at": "公示时间",
        "threshold_reached_at": "达到支持数时间",
        "answer": "答复",
        "answered_at": "答复时间",
        "closed_at": "办结时间",
        "vote_id": "关联投票编号",
    }
    column_formatters = {
        "author": lookup("residents", "author_id"),
        "answer_due_at": due("answer_due_at", done=lambda p: p.status in _ANSWERED),
    }
    column_formatters_detail = column_formatters

    def lookups(self, session: Session, rows: Sequence[Any], context: ConsoleContext) -> Lookups:
        """Authors' names."""
        return {"residents": resident_names(session, ids_of(rows, "author_id"))}


@dataclass(frozen=True)
class OptionCount:
    """How many ballots chose one option."""

    label: str
    count: int


def vote_tally(session: Session, vote: Vote, now: datetime) -> list[OptionCount] | None:
    """Ballots per option in the vote's order, or None while the result must stay secret."""
    if now < vote.closes_at:
        return None
    rows = session.execute(
        select(Ballot.option_id, func.count())
        .where(Ballot.vote_id == vote.id)
        .group_by(Ballot.option_id)
    )
    counts = {option_id: count for option_id, count in rows}
    return [OptionCount(option.label, counts.get(option.id, 0)) for option in vote.options]


def _tally(vote: Vote, _name: str, request: Request) -> Markup | str:
    tally: list[OptionCount] | None = looked_up(request, "tallies", vote.id)
    if tally is None:
        opened = looked_up(request, "opened", vote.id)
        return TALLY_HIDDEN if opened else NOT_OPEN
    lines = [Markup("{}：{} 票").format(option.label, option.count) for option in tally]
    total = sum(option.count for option in tally)
    return Markup("<br>").join([*lines, Markup("合计：{} 票").format(total)])


def _options(vote: Vote, _name: str) -> str:
    return "、".join(option.label for option in vote.options)


class VoteView(ConsoleModelView, model=Vote):
    """Votes; per-option counts appear only after the vote has closed (secret ballot)."""

    name = "投票"
    name_plural = "投票"
    icon = "fa-solid fa-square-poll-vertical"
    category = CIVIC
    access = {StaffRole.grid_worker: Access.read}
    can_create = can_edit = can_delete = False

    column_list = [
        Vote.id,
        Vote.title,
        Vote.kind,
        Vote.scope,
        Vote.eligibility,
        Vote.opens_at,
        Vote.closes_at,
        "tally",
    ]
    column_details_list = [*column_list[:2], Vote.description, "option_labels", *column_list[2:]]
    column_searchable_list = [Vote.title]
    column_default_sort = ("id", True)
    column_labels = {
        "id": ID,
        "title": "标题",
        "description": "说明",
        "option_labels": "选项",
        "kind": "类型",
        "scope": "范围",
        "eligibility": "投票资格",
        "opens_at": "开始时间",
        "closes_at": "结束时间",
        "tally": "计票结果",
        "created_at": CREATED_AT,
    }
    column_formatters = {"tally": _tally, "option_labels": _options}
    column_formatters_detail = column_formatters

    def lookups(self, session: Session, rows: Sequence[Any], context: ConsoleContext) -> Lookups:
        """Tallies of closed votes; whether the others have opened."""
        now = context.clock.now()
        return {
            "tallies": {vote.id: vote_tally(session, vote, now) for vote in rows},
            "opened": {vote.id: vote.opens_at <= now for vote in rows},
        }
