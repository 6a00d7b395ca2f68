"""Votes (投票 / 参与式预算): eligibility, secret ballots, tallies and announcements.

Who voted (`VoteParticipation`) and what was chosen (`Ballot`) are written apart, in one
transaction, and nothing links them: the ballot has a random id, no time and no voter.
"""

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from records.core.config import Settings
from records.core.problems import Problem, not_found
from records.models import (
    Ballot,
    Building,
    ChannelIdentity,
    Eligibility,
    Household,
    HouseholdUnit,
    Resident,
    VerificationState,
    Vote,
    VoteKind,
    VoteOption,
    VoteParticipation,
    VoteScope,
)
from records.repository import identities as identities_repo
from records.repository import notifications as notifications_repo
from records.repository import proposals as proposals_repo
from records.repository.paging import page

YES_NO_OPTIONS = (("yes", "同意"), ("no", "反对"), ("abstain", "弃权"))
# Words people say for the yes/no/abstain options, beyond the labels themselves.
YES_NO_SYNONYMS = {
    "yes": ("赞成", "支持", "是", "好", "y", "agree"),
    "no": ("不同意", "不赞成", "不支持", "否", "n", "disagree"),
    "abstain": ("弃票", "不表态", "不投"),
}
CHINESE_NUMBERS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
CHINESE_NUMBERS |= {"六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
MIN_OPTIONS, MAX_OPTIONS = 2, 10

ALREADY_VOTED = "already-voted"


class VoteState(StrEnum):
    """Where a vote stands at a moment."""

    upcoming = "upcoming"
    open = "open"
    closed = "closed"


@dataclass(frozen=True)
class Receipt:
    """What a voter is told after casting: never what they chose."""

    vote: Vote
    text: str


@dataclass(frozen=True)
class OptionCount:
    """Ballots for one option."""

    option: VoteOption
    count: int


@dataclass(frozen=True)
class Tally:
    """The public result of a closed vote."""

    vote: Vote
    counts: list[OptionCount]
    total: int
    eligible: int
    text: str

    @property
    def turnout(self) -> float | None:
        """Ballots over eligible voters, when anyone was eligible."""
        return round(self.total / self.eligible, 4) if self.eligible else None


def local_time_text(moment: datetime, timezone: str) -> str:
    """A moment as residents say it: "11月30日18:00"."""
    local = moment.astimezone(ZoneInfo(timezone))
    return f"{local.month}月{local.day}日{local:%H:%M}"


def state_of(vote: Vote, now: datetime) -> VoteState:
    """Upcoming before it opens, open until it closes, closed after."""
    if now < vote.opens_at:
        return VoteState.upcoming
    if now < vote.closes_at:
        return VoteState.open
    return VoteState.closed


# --- creating and reading votes -------------------------------------------------------------


def create_vote(
    session: Session,
    *,
    title: str,
    description: str | None,
    kind: VoteKind,
    options: Sequence[str],
    scope: VoteScope,
    scope_building_id: int | None,
    scope_unit_id: int | None,
    eligibility: Eligibility,
    opens_at: datetime,
    closes_at: datetime,
    now: datetime,
    proposal_id: int | None = None,
) -> Vote:
    """Create a vote; with `proposal_id`, the proposal goes to this vote (status voting)."""
    _check_times(opens_at=opens_at, closes_at=closes_at, now=now)
    building_id, unit_id = _checked_scope(
        session, scope=scope, building_id=scope_building_id, unit_id=scope_unit_id
    )
    proposal = (
        proposals_repo.proposal_ready_for_vote(session, proposal_id=proposal_id)
        if proposal_id is not None
        else None
    )
    vote = Vote(
        title=title.strip(),
        description=description,
        kind=kind,
        scope=scope,
        scope_building_id=building_id,
        scope_unit_id=unit_id,
        eligibility=eligibility,
        opens_at=opens_at,
        closes_at=closes_at,
        created_at=now,
        options=_make_options(kind, options),
    )
    session.add(vote)
    session.flush()
    if proposal is not None:
        proposals_repo.link_vote(session, proposal=proposal, vote=vote, now=now)
    return vote


def _check_times(*, opens_at: datetime, closes_at: datetime, now: datetime) -> None:
    if closes_at <= opens_at:
        raise Problem(422, "bad-vote-times", "投票的结束时间要晚于开始时间。")
    if closes_at <= now:
        raise Problem(422, "bad-vote-times", "投票的结束时间已经过去了，请重新选择。")


def _checked_scope(
    session: Session, *, scope: VoteScope, building_id: int | None, unit_id: int | None
) -> tuple[int | None, int | None]:
    """The scope ids that matter for `scope`; the one it names must exist."""
    if scope is VoteScope.building:
        if building_id is None or session.get(Building, building_id) is None:
            raise not_found("楼栋")
        return building_id, None
    if scope is VoteScope.unit:
        if unit_id is None or session.get(HouseholdUnit, unit_id) is None:
            raise not_found("联户单元")
        return None, unit_id
    return None, None


def _make_options(kind: VoteKind, labels: Sequence[str]) -> list[VoteOption]:
    if kind is VoteKind.yes_no:
        if labels:
            raise Problem(422, "bad-options", "同意/反对式的投票不需要填写选项。")
        return [
            VoteOption(code=code, label=label, position=n)
            for n, (code, label) in enumerate(YES_NO_OPTIONS, start=1)
        ]
    cleaned = [label.strip() for label in labels]
    if not MIN_OPTIONS <= len(cleaned) <= MAX_OPTIONS:
        raise Problem(422, "bad-options", "选项要有2到10个。")
    if any(not label for label in cleaned) or len(set(cleaned)) != len(cleaned):
        raise Problem(422, "bad-options", "选项不能为空，也不能重复。")
    return [
        VoteOption(code=str(n), label=label, position=n) for n, label in enumerate(cleaned, start=1)
    ]


def get_vote(session: Session, *, vote_id: int) -> Vote:
    """A vote, or a 404 problem."""
    vote = session.get(Vote, vote_id)
    if vote is None:
        raise not_found("投票")
    return vote


def list_votes(
    session: Session, *, state: VoteState | None, now: datetime, limit: int, offset: int
) -> tuple[Sequence[Vote], int]:
    """A page of votes (optionally only upcoming, open or closed ones) and the total."""
    query = _in_state(select(Vote), state, now)
    return page(
        session, query.order_by(Vote.opens_at.desc(), Vote.id.desc()), limit=limit, offset=offset
    )


def _in_state(query: Select[Vote], state: VoteState | None, now: datetime) -> Select[Vote]:
    if state is VoteState.upcoming:
        return query.where(Vote.opens_at > now)
    if state is VoteState.open:
        return query.where(Vote.opens_at <= now, Vote.closes_at > now)
    if state is VoteState.closed:
        return query.where(Vote.closes_at <= now)
    return query


# --- who may vote ---------------------------------------------------------------------------


def voter_key(vote: Vote, resident: Resident) -> str:
    """The key one ballot is allowed per: the resident, or their household."""
    if vote.eligibility is Eligibility.household:
        if resident.household_id is None:
            raise Problem(
                403,
                "no-household",
                "这次投票按户进行，您还没有登记住址，请先联系社区工作人员登记。",
            )
        return f"household:{resident.household_id}"
    return f"resident:{resident.id}"


def check_in_scope(session: Session, *, vote: Vote, resident: Resident) -> None:
    """Refuse (403) a resident who does not live where the vote applies."""
    if vote.scope is VoteScope.community:
        return
    household = resident.household
    if vote.scope is VoteScope.building:
        inside = household is not None and household.building_id == vote.scope_building_id
    else:
        inside = household is not None and household.unit_id == vote.scope_unit_id
    if not inside:
        raise Problem(403, "not-in-scope", f"这次投票只限{scope_name(session, vote)}的居民参加。")


def scope_name(session: Session, vote: Vote) -> str:
    """Where a vote applies, as people say it ("3号楼", "一联户", "本社区")."""
    if vote.scope is VoteScope.building and vote.scope_building_id is not None:
        building = session.get(Building, vote.scope_building_id)
        return building.name if building is not None else "指定楼栋"
    if vote.scope is VoteScope.unit and vote.scope_unit_id is not None:
        unit = session.get(HouseholdUnit, vote.scope_unit_id)
        return unit.name if unit is not None else "指定联户单元"
    return "本社区"


def _has_participation(session: Session, *, vote_id: int, key: str) -> bool:
    found = session.scalar(
        select(VoteParticipation.id).where(
            VoteParticipation.vote_id == vote_id, VoteParticipation.voter_key == key
        )
    )
    return found is not None


def has_voted(session: Session, *, vote_id: int, identity: str) -> bool:
    """Whether this verified sender (or, for per-household votes, their household) voted."""
    vote = get_vote(session, vote_id=vote_id)
    resident = identities_repo.verified_resident(session, identity=identity)
    if vote.eligibility is Eligibility.household and resident.household_id is None:
        return False
    return _has_participation(session, vote_id=vote.id, key=voter_key(vote, resident))


def open_votes_for(session: Session, *, identity: str, now: datetime) -> list[Vote]:
    """Votes open now that this verified sender may still vote in (the bot's "list votes")."""
    resident = identities_repo.verified_resident(session, identity=identity)
    open_votes = session.scalars(
        _in_state(select(Vote), VoteState.open, now).order_by(Vote.closes_at, Vote.id)
    ).all()
    return [vote for vote in open_votes if _may_still_vote(session, vote=vote, resident=resident)]


def _may_still_vote(session: Session, *, vote: Vote, resident: Resident) -> bool:
    try:
        check_in_scope(session, vote=vote, resident=resident)
        key = voter_key(vote, resident)
    except Problem:
        return False
    return not _has_participation(session, vote_id=vote.id, key=key)


# --- casting --------------------------------------------------------------------------------


def cast(
    session: Session,
    *,
    vote_id: int,
    identity: str,
    choice: str,
    now: datetime,
    settings: Settings,
) -> Receipt:
    """Record one secret ballot; flushes, the caller commits.

    The participation is flushed first, inside a savepoint: its unique key is what stops a
    second ballot under concurrency, and the ballot is only added once it has succeeded.
    """
    vote = get_vote(session, vote_id=vote_id)
    _check_open(vote, now=now, timezone=settings.timezone)
    resident = identities_repo.verified_resident(session, identity=identity)
    check_in_scope(session, vote=vote, resident=resident)
    key = voter_key(vote, resident)
    if _has_participation(session, vote_id=vote.id, key=key):
        raise _already_voted(vote)
    option = resolve_choice(vote, choice)
    _record_participation(session, vote=vote, key=key, now=now)
    # A Core insert keeps the ballot out of the ORM unit of work, so the audit trail (which
    # records and orders every ORM write) never holds a ballot next to its participation.
    session.execute(insert(Ballot).values(vote_id=vote.id, option_id=option.id))
    results_at = local_time_text(vote.closes_at, settings.timezone)
    text = f"您的投票已经记下了，谢谢参与！“{vote.title}”的结果会在{results_at}投票结束后公布。"
    return Receipt(vote=vote, text=text)


def _check_open(vote: Vote, *, now: datetime, timezone: str) -> None:
    state = state_of(vote, now)
    if state is VoteState.upcoming:
        opens = local_time_text(vote.opens_at, timezone)
        raise Problem(409, "vote-not-open", f"投票还没开始，{opens}开始。")
    if state is VoteState.closed:
        raise Problem(409, "vote-closed", "投票已经结束了，谢谢您的关心。")


def _already_voted(vote: Vote) -> Problem:
    if vote.eligibility is Eligibility.household:
        detail = "您家已经投过票了，每户只能投一次。"
    else:
        detail = "您已经投过票了，每人只能投一次。"
    return Problem(409, ALREADY_VOTED, detail)


def _record_participation(session: Session, *, vote: Vote, key: str, now: datetime) -> None:
    try:
        with session.begin_nested():
            session.add(VoteParticipation(vote_id=vote.id, voter_key=key, created_at=now))
    except IntegrityError as exc:
        # A concurrent request for the same voter committed first.
        raise _already_voted(vote) from exc


def resolve_choice(vote: Vote, choice: str) -> VoteOption:
    """The option meant by a code ("yes", "2"), a label ("同意"), a number or a synonym."""
    said = _normalise(choice)
    for option in vote.options:
        if said in (_normalise(option.code), _normalise(option.label)):
            return option
    position = _position(said)
    for option in vote.options:
        if option.position == position:
            return option
    if vote.kind is VoteKind.yes_no:
        for option in vote.options:
            if said in YES_NO_SYNONYMS.get(option.code, ()):
                return option
    menu = "，".join(f"{o.position}. {o.label}" for o in vote.options)
    raise Problem(422, "unknown-choice", f"没听清您选的是哪一项。可以选：{menu}。")


def _normalise(text: str) -> str:
    # NFKC turns full-width digits and letters (１, Ａ) into plain ones.
    cleaned = unicodedata.normalize("NFKC", text).strip().lower()
    return cleaned.strip("。.！!，,、 ")


def _position(said: str) -> int | None:
    """1-based position from "2", "第二个", "选三", "2号"…"""
    core = said.removeprefix("选").removeprefix("第")
    for suffix in ("个", "项", "号", "种"):
        core = core.removesuffix(suffix)
    if core.isdigit():
        return int(core)
    return CHINESE_NUMBERS.get(core)


# --- results --------------------------------------------------------------------------------


def tally(session: Session, *, vote_id: int, now: datetime, settings: Settings) -> Tally:
    """Counts per option once the vote has closed (never before: no early trends)."""
    vote = get_vote(session, vote_id=vote_id)
    if state_of(vote, now) is not VoteState.closed:
        closes = local_time_text(vote.closes_at, settings.timezone)
        raise Problem(409, "vote-not-closed", f"投票还没结束，结果会在{closes}后公布。")
    rows = session.execute(
        select(Ballot.option_id, func.count())
        .where(Ballot.vote_id == vote.id)
        .group_by(Ballot.option_id)
    ).all()
    by_option = {option_id: count for option_id, count in rows}
    counts = [OptionCount(option=o, count=by_option.get(o.id, 0)) for o in vote.options]
    total = sum(c.count for c in counts)
    eligible = eligible_count(session, vote=vote)
    return Tally(
        vote=vote,
        counts=counts,
        total=total,
        eligible=eligible,
        text=_result_text(vote, counts, total, eligible),
    )


def _result_text(vote: Vote, counts: list[OptionCount], total: int, eligible: int) -> str:
    parts = "，".join(f"{c.option.label}{c.count}票" for c in counts)
    text = f"“{vote.title}”投票结果：{parts}；共{total}票"
    if eligible:
        text += f"，参与率{round(100 * total / eligible)}%"
    return text + "。"


def eligible_count(session: Session, *, vote: Vote) -> int:
    """How many residents (or households) the vote is open to."""
    if vote.eligibility is Eligibility.household:
        households = _households_in_scope(select(func.count(Household.id)), vote)
        return session.scalar(households) or 0
    residents = select(func.count(Resident.id))
    if vote.scope is not VoteScope.community:
        residents = _households_in_scope(residents.join(Household), vote)
    return session.scalar(residents) or 0


def _households_in_scope(query: Select[int], vote: Vote) -> Select[int]:
    if vote.scope is VoteScope.building:
        return query.where(Household.building_id == vote.scope_building_id)
    if vote.scope is VoteScope.unit:
        return query.where(Household.unit_id == vote.scope_unit_id)
    return query


# --- periodic rules -------------------------------------------------------------------------


def announce_open_votes(session: Session, *, settings: Settings, now: datetime) -> int:
    """Tell eligible verified residents once that a vote has opened; returns votes announced."""
    votes = session.scalars(
        _in_state(select(Vote), VoteState.open, now).where(Vote.announced_at.is_(None))
    ).all()
    for vote in votes:
        text = (
            f"社区新的投票“{vote.title}”已经开始，{scope_name(session, vote)}的居民可以参加，"
            f"{local_time_text(vote.closes_at, settings.timezone)}截止。欢迎投出您的一票。"
        )
        payload = {
            "text": text,
            "vote_id": vote.id,
            "title": vote.title,
            "closes_at": vote.closes_at.isoformat(),
        }
        for resident in _verified_residents_in_scope(session, vote=vote):
            notifications_repo.notify_resident(
                session,
                resident=resident,
                kind="vote_opened",
                payload=payload,
                dedupe_key=f"vote:{vote.id}:open:resident:{resident.id}",
            )
        vote.announced_at = now
    session.flush()
    return len(votes)


def _verified_residents_in_scope(session: Session, *, vote: Vote) -> Sequence[Resident]:
    verified = select(ChannelIdentity.resident_id).where(
        ChannelIdentity.state == VerificationState.verified
    )
    query = select(Resident).where(Resident.id.in_(verified)).order_by(Resident.id)
    if vote.eligibility is Eligibility.household:
        query = query.where(Resident.household_id.is_not(None))
    if vote.scope is VoteScope.building:
        query = query.where(Resident.household.has(Household.building_id == vote.scope_building_id))
    elif vote.scope is VoteScope.unit:
        query = query.where(Resident.household.has(Household.unit_id == vote.scope_unit_id))
    return session.scalars(query).all()


def publish_closed_votes(session: Session, *, settings: Settings, now: datetime) -> int:
    """Send each participant the result of a vote that closed; returns votes published."""
    votes = session.scalars(
        _in_state(select(Vote), VoteState.closed, now).where(Vote.results_published_at.is_(None))
    ).all()
    for vote in votes:
        result = tally(session, vote_id=vote.id, now=now, settings=settings)
        payload = {
            "text": result.text,
            "vote_id": vote.id,
            "title": vote.title,
            "counts": [{"label": c.option.label, "count": c.count} for c in result.counts],
            "total": result.total,
        }
        # Telling who took part reveals nothing of what they chose.
        keys = session.scalars(
            select(VoteParticipation.voter_key).where(VoteParticipation.vote_id == vote.id)
        ).all()
        for key in keys:
            resident = _participant(session, key)
            if resident is not None:
                notifications_repo.notify_resident(
                    session,
                    resident=resident,
                    kind="vote_result",
                    payload=payload,
                    dedupe_key=f"vote:{vote.id}:result:{key}",
                )
        vote.results_published_at = now
    session.flush()
    return len(votes)


def _participant(session: Session, key: str) -> Resident | None:
    """Who to tell for a voter key: the resident, or a verified member of the household."""
    kind, _, raw_id = key.partition(":")
    if kind == "resident":
        return session.get(Resident, int(raw_id))
    members = session.scalars(
        select(Resident).where(Resident.household_id == int(raw_id)).order_by(Resident.id)
    ).all()
    verified_ids = set(
        session.scalars(
            select(ChannelIdentity.resident_id).where(
                ChannelIdentity.state == VerificationState.verified,
                ChannelIdentity.resident_id.in_([m.id for m in members]),
            )
        ).all()
    )
    candidates = [m for m in members if m.id in verified_ids] or list(members)
    return candidates[0] if candidates else None
