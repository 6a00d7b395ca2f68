"""Turn what residents say (typed or via speech recognition) into concrete values.

Every function is pure: the current date or time is passed in, nothing reads the clock.
Dates are calendar dates in Asia/Shanghai (``TZ``).

Libraries
---------
Numerals: ``cn2an`` (already a dependency) converts Chinese numerals, in both the
"value" reading (五百零二, 十二, 两) and the digit-by-digit reading (五零二, 幺零二).
Our own layer only adds 俩/仨, keeps leading zeros of codes, and splits building /
unit / room on their suffix words (号楼, 栋, 单元, 室): that is structure, not
numeral conversion.

Dates: ``jionlp.parse_time`` (JioNLP, Apache-2.0, maintained, pure Python).
Candidates were tried on the phrases residents use (今天 明天 后天 大后天 下周一
这周五 周日 星期天 礼拜三 下礼拜二 5号 11月25号 12月3日 本周六 今晚 明天中午
后天早上 下周一午饭):

* jionlp understood all of them except the dialect forms 明儿/后儿 and 明早; it also
  does 下下周三, 下个月5号, 三天后, festivals and lunar dates. Cost: a large install
  (about 245 MB with its dependencies numpy and the jiojio segmenter, whose model
  files we never load) and 0.2-0.6 s to import, so it is imported lazily, on the
  first date parse (``warm_up()`` does it up front). It prints a banner on import,
  which is swallowed, and is stateful, so calls are serialised with a lock.
* dateparser 1.5 (14 MB, fast) failed on 10 of 21: 下周一, 这周五, 本周六, 下礼拜二,
  5号, 11月25号, 11月25日, 12月3日, 今晚, 后天早上; we would have re-implemented
  the week and day-of-month arithmetic ourselves.
* time-nlp / ChineseTimeNLP ports: last released 2021, placeholder metadata.
* chinese-calendar answers "is this a holiday", it parses nothing.

The thin layer of our own rewrites colloquial forms into ones jionlp parses
(明儿 -> 明天, 后儿 -> 后天, 今晚 -> 今天晚上, 明早 -> 明天早上, 廿 -> 二十,
周1 -> 周一) and leaves all date arithmetic to jionlp. Policy on top:
expressions without an explicit anchor (周一, 5号, 11月20号) mean the next
occurrence on or after today (jionlp's own ``ret_future`` skips today, so it is
only asked when the plain reading lies in the past); anchored ones (昨天, 上周一,
这周一) are returned as said, even if past. Multi-day answers (这周, 周末) are None.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import threading
import unicodedata
import warnings
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as dtime
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

import cn2an

__all__ = [
    "TZ",
    "Location",
    "MealSlot",
    "digits",
    "local_now",
    "parse_building",
    "parse_date",
    "parse_location",
    "parse_meal_slot",
    "parse_quantity",
    "parse_rating",
    "parse_room",
    "parse_unit",
    "parse_when",
    "to_int",
    "warm_up",
    "yes_no",
]

TZ: Final = ZoneInfo("Asia/Shanghai")

MealSlot = Literal["breakfast", "lunch", "dinner"]

# ---------------------------------------------------------------------------
# Text clean-up shared by everything
# ---------------------------------------------------------------------------

# Characters that can form a numeral; cn2an decides what they mean.
_NUM_CHARS: Final = "0-9零〇一二两三四五六七八九十百千万幺壹贰叁肆伍陆柒捌玖拾佰仟廿"
_NUM: Final = f"[{_NUM_CHARS}]+"
_NUM_RE: Final = re.compile(_NUM)
_UNIT_CHARS: Final = frozenset("十百千万拾佰仟廿")
# Colloquial numerals cn2an does not know, mapped to ones it does.
_COLLOQUIAL_DIGITS: Final = str.maketrans({"俩": "两", "仨": "三", "○": "〇"})
_PUNCT_RE: Final = re.compile(r"[\s,.;:!?，。；：！？、…~·'\"“”‘’()（）【】\[\]]+")


def _clean(text: str) -> str:
    """NFKC (full-width digits and signs to ASCII), no whitespace, ASCII lower-cased."""
    return "".join(unicodedata.normalize("NFKC", text).split()).lower()


def _cn2int(numeral: str) -> int | None:
    """One numeral run ("502", "五百零二", "五零二", "两") to an int via cn2an."""
    if numeral.isascii() and numeral.isdigit():
        return int(numeral)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = cn2an.cn2an(numeral, "smart")
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    if isinstance(value, int | float) and float(value).is_integer():
        return int(value)
    return None


# ---------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------


def to_int(text: str) -> int | None:
    """First number in the text as an int: "三" 3, "两份" 2, "俩" 2, "二十" 20, "12" 12."""
    match = _NUM_RE.search(_clean(text).translate(_COLLOQUIAL_DIGITS))
    return _cn2int(match.group()) if match else None


_ROOM_SUFFIX_RE: Final = re.compile(r"(?:室|号房|房间|房|号)$")


def digits(text: str) -> str | None:
    """Digit string of a room number or code: "五零二" "502", "幺零二" "102", "五百零二" "502"."""
    cleaned = _ROOM_SUFFIX_RE.sub("", _clean(text).translate(_COLLOQUIAL_DIGITS))
    if not cleaned or not _NUM_RE.fullmatch(cleaned):
        return None
    if cleaned.isascii():
        return cleaned
    if _UNIT_CHARS.intersection(cleaned):
        value = _cn2int(cleaned)
        return None if value is None else str(value)
    # Digit-by-digit reading: convert each digit so leading zeros survive (零三七 -> 037).
    out = [ch if ch.isascii() else _cn2int(ch) for ch in cleaned]
    if any(d is None for d in out):
        return None
    return "".join(str(d) for d in out)


# ---------------------------------------------------------------------------
# Addresses: building / unit / room
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Location:
    """A flat in the compound; any part may be unknown."""

    building: int | None
    unit: int | None
    room: str | None


# "2号门" / "2号大门" is a gate of the compound, not building or room 2.
_BUILDING_SUFFIX: Final = "号楼|栋|幢|座|号(?!大?门)"
# Speech recognition homophones of the suffix words, fixed only right after a numeral.
_ASR_SUFFIX_FIXES: Final = (
    (re.compile(f"(?<=[{_NUM_CHARS}])(?:东|冬|洞)"), "栋"),
    (re.compile(f"(?<=[{_NUM_CHARS}])撞"), "幢"),
    (re.compile(f"(?<=[{_NUM_CHARS}])好楼"), "号楼"),
    (re.compile(f"(?<=[{_NUM_CHARS}])(?:单员|单园|担元|丹元)"), "单元"),
)
_LOCATION_RE: Final = re.compile(
    rf"(?:(?P<b>{_NUM})(?:{_BUILDING_SUFFIX}))?"
    rf"(?:(?P<u>{_NUM})单元)?"
    rf"(?:(?P<r>{_NUM})(?![{_NUM_CHARS}]|号大?门)(?P<rs>室|号房|房间|房|号)?)?"
)
# Written form: 3-2-501 (building-unit-room) or 3-501 (building-room).
_DASHED_RE: Final = re.compile(
    rf"(?P<b>{_NUM})[-—–~](?:(?P<u>{_NUM})[-—–~])?(?P<r>{_NUM})(?:室|号)?"
)


def _location_text(text: str) -> str:
    """Cleaned text with suffix homophones from speech recognition fixed."""
    cleaned = _clean(text)
    for pattern, replacement in _ASR_SUFFIX_FIXES:
        cleaned = pattern.sub(replacement, cleaned)
    return cleaned


def _location_from(match: re.Match[str]) -> Location:
    """Location from a match with groups b, u and r."""
    b, u, r = match.group("b"), match.group("u"), match.group("r")
    return Location(
        building=_cn2int(b) if b else None,
        unit=_cn2int(u) if u else None,
        room=digits(r) if r else None,
    )


def parse_location(text: str) -> Location | None:
    """Building, unit and room from "3栋2单元501", "三号楼二单元五零二", "3-2-501" and the like."""
    cleaned = _location_text(text)
    if not cleaned:
        return None
    dashed = _DASHED_RE.search(cleaned)
    if dashed:
        return _location_from(dashed)
    best: re.Match[str] | None = None
    for match in _LOCATION_RE.finditer(cleaned):
        # A bare number counts as a room only when it is all there is ("502").
        bare_room = not (match.group("b") or match.group("u") or match.group("rs"))
        if not match.group() or (bare_room and match.group() != cleaned):
            continue
        if best is None or len(match.group()) > len(best.group()):
            best = match
    if best is None:
        return None
    location = _location_from(best)
    if location == Location(None, None, None):
        return None
    return location


def _bare_number(text: str, suffixes: str) -> int | None:
    """The int of text that is only a numeral and one of the given suffix words."""
    cleaned = re.sub(f"(?:{suffixes})$", "", _location_text(text))
    return _cn2int(cleaned) if cleaned and _NUM_RE.fullmatch(cleaned) else None


def parse_building(text: str) -> int | None:
    """Building number from an entity value: "三号楼" 3, "12栋" 12, "五幢" 5, "3" 3."""
    value = _bare_number(text, f"{_BUILDING_SUFFIX}|楼")
    if value is not None:
        return value
    location = parse_location(text)
    return location.building if location else None


def parse_unit(text: str) -> int | None:
    """Unit (entrance) number from an entity value: "2单元" 2, "二单元" 2, "2" 2."""
    value = _bare_number(text, "单元门|单元|门洞")
    if value is not None:
        return value
    location = parse_location(text)
    return location.unit if location else None


def parse_room(text: str) -> str | None:
    """Room number as a digit string: "五零二" "502", "301室" "301", "幺零二" "102"."""
    value = digits(_location_text(text))
    if value is not None:
        return value
    location = parse_location(text)
    return location.room if location else None


# ---------------------------------------------------------------------------
# Quantities and ratings
# ---------------------------------------------------------------------------

_MAX_QUANTITY: Final = 99
_CLASSIFIED_RE: Final = re.compile(f"({_NUM})(?:份|个|位|口|人|碗|盒|套|客|只|袋)")


def parse_quantity(text: str) -> int | None:
    """How many (portions, people): "两份" 2, "俩" 2, "三个人的" 3, "2份" 2; 1 to 99."""
    cleaned = _clean(text).translate(_COLLOQUIAL_DIGITS)
    classified = _CLASSIFIED_RE.search(cleaned)  # 一家三口: the number before 口
    value = _cn2int(classified.group(1)) if classified else to_int(cleaned)
    if value is None or not 1 <= value <= _MAX_QUANTITY:
        return None
    return value


# Checked in order, first hit wins: negated forms before the plain ones they contain.
_RATING_GROUPS: Final[tuple[tuple[int, str], ...]] = (
    (1, "非常不满意 很不满意 特别不满意 太不满意"),
    (2, "不是很满意 不太满意 不怎么满意 不大满意"),
    (1, "不满意 差评 很差 太差 非常差 很烂"),
    (2, "不太好 不怎么样 比较差 有点差"),
    (3, "差不多"),
    (4, "不差 比较满意 还算满意 基本满意 还不错 挺好 不错"),
    (3, "还好 一般 还行 还可以 凑合 马马虎虎 过得去 中等"),
    (5, "满分 好评 满意 非常好 很好 特别好 太好了 完美"),
    (1, "差"),
)
_RATING_WORDS: Final = tuple(
    (word, score) for score, words in _RATING_GROUPS for word in words.split()
)
_RATING_NUM_RE: Final = re.compile(f"({_NUM})(?:颗星|个星|星|分)")


def parse_rating(text: str) -> int | None:
    """Satisfaction 1-5: "五星"/"5分" 5, "满意" 5, "一般"/"还行" 3, "不满意" 1."""
    cleaned = _clean(text)
    if not cleaned:
        return None
    numeric = _RATING_NUM_RE.search(cleaned)
    numeral = numeric.group(1) if numeric else cleaned if _NUM_RE.fullmatch(cleaned) else None
    value = _cn2int(numeral) if numeral else None
    if value is not None and 1 <= value <= 5:
        return value
    # Out of range falls through to the words: "十分满意" is "very satisfied", not 10 points.
    for word, score in _RATING_WORDS:
        if word in cleaned:
            return score
    return None


# ---------------------------------------------------------------------------
# Yes / no
# ---------------------------------------------------------------------------

_YES_WORDS: Final = """
    是 是的 对 对的 好 好的 行 可以 嗯 恩 嗯呐 没错 确认 确定 要 需要 同意 没问题 没有问题
    当然 好嘞 好滴 不错 可不是 就是 对头 要得 赞成 ok okay yes
"""
_NO_WORDS: Final = """
    不 不是 不对 不要 不用 不行 不可以 不好 不需要 不了 不同意 不确认 不必 算了 取消 别
    没有 没 否 错了 反对 不赞成 no
"""
# Make the reply ambiguous: not knowing, double negatives, A-not-A questions.
_UNSURE_WORDS: Final = """
    不知道 不确定 不清楚 不记得 不一定 再说 再想想 想想 想一想 考虑 等等 等一下 吗
    不是不 没有不 不会不 不能不 并不是不
    要不要 需不需要 是不是 对不对 好不好 行不行 可不可以 能不能
"""
# Carry no answer themselves (但是 is not 是, 好像 is not 好).
_SKIP_WORDS: Final = """
    但是 可是 还是 要是 只是 总是 老是 于是 不过 不好意思 对不起 要不 要不然 要么 好像 好多
"""
# Polarity per word: True yes, False no, None cannot tell, "skip" no answer.
_YES_NO_WORDS: Final[dict[str, bool | Literal["skip"] | None]] = {
    **dict.fromkeys(_YES_WORDS.split(), True),
    **dict.fromkeys(_NO_WORDS.split(), False),
    **dict.fromkeys(_UNSURE_WORDS.split(), None),
    **dict.fromkeys(_SKIP_WORDS.split(), "skip"),
}
# Sounds that may only be hesitation when more follows.
_FILLERS: Final = frozenset({"嗯", "恩", "呃", "额", "啊", "嗯嗯"})
_YES_NO_MAX_LEN: Final = max(len(word) for word in _YES_NO_WORDS)
_CLAUSE_RE: Final = re.compile(r"[,.;:!?，。；：！？、…]+")


def _polarities(clause: str) -> list[bool | None]:
    """Polarity of each lexicon word in the clause, longest match first, skips dropped."""
    found: list[bool | None] = []
    i = 0
    while i < len(clause):
        for size in range(min(_YES_NO_MAX_LEN, len(clause) - i), 0, -1):
            word = clause[i : i + size]
            if word in _YES_NO_WORDS:
                polarity = _YES_NO_WORDS[word]
                if not isinstance(polarity, str):  # "skip" words carry no answer
                    found.append(polarity)
                i += size
                break
        else:
            i += 1
    return found


def yes_no(text: str) -> bool | None:
    """Yes/no reply: 是/对/好/行/可以/嗯 True, 不/不是/不要/算了/取消/别 False, else None."""
    normalized = unicodedata.normalize("NFKC", text).lower()
    clauses = ["".join(c.split()) for c in _CLAUSE_RE.split(normalized)]
    clauses = [c for c in clauses if c]
    for index, clause in enumerate(clauses):
        if clause in _FILLERS and index < len(clauses) - 1:
            continue  # "嗯…我想想": a hesitation, the rest decides
        polarities = _polarities(clause)
        if not polarities:
            continue
        # The first clause that answers decides: "不，我要明天的" is a no.
        if None in polarities or len(set(polarities)) > 1:
            return None  # 不是不行, 好不好, 是不是, 不知道
        return polarities[0]
    return None


# ---------------------------------------------------------------------------
# Meals, dates and times
# ---------------------------------------------------------------------------

# Dialect and short forms rewritten to what jionlp parses; longest key wins.
_DAY_ALIASES: Final[dict[str, str]] = {
    **dict.fromkeys(("大后儿个", "大后儿"), "大后天"),
    **dict.fromkeys(("后儿个", "后儿"), "后天"),
    **dict.fromkeys(("明儿个", "明儿", "明个儿", "明个"), "明天"),
    **dict.fromkeys(("今儿个", "今儿", "今个儿", "今个"), "今天"),
    **dict.fromkeys(("昨儿个", "昨儿"), "昨天"),
    **dict.fromkeys(("前儿个", "前儿"), "前天"),
    "明早": "明天早上",
    "明晚": "明天晚上",
    "今早": "今天早上",
    "今晚": "今天晚上",
    "廿": "二十",
    "卅": "三十",
}
_DAY_ALIAS_RE: Final = re.compile(
    "|".join(sorted(map(re.escape, _DAY_ALIASES), key=len, reverse=True))
)
# 周1 / 星期7 as written by some speech recognisers' inverse text normalisation.
_ARABIC_WEEKDAY_RE: Final = re.compile(r"(周|星期|礼拜)([1-7])")

# Meal words first (they name the meal), then times of day; both are removed before
# the date is parsed.
_MEAL_WORDS: Final[dict[str, MealSlot]] = {
    **dict.fromkeys(("早饭", "早餐"), "breakfast"),
    **dict.fromkeys(("午饭", "午餐", "中饭", "中午饭"), "lunch"),
    **dict.fromkeys(("晚饭", "晚餐", "夜饭", "晚上饭"), "dinner"),
}
_DAYTIME_WORDS: Final[dict[str, MealSlot]] = {
    **dict.fromkeys(("早上", "早晨", "清早"), "breakfast"),
    **dict.fromkeys(("中午", "晌午", "午间"), "lunch"),
    **dict.fromkeys(("晚上", "傍晚", "晚间", "夜里"), "dinner"),
}
_SLOT_WORD_RE: Final = re.compile(
    "|".join(sorted(map(re.escape, [*_MEAL_WORDS, *_DAYTIME_WORDS]), key=len, reverse=True))
)
# Meant as several days or a choice of days; jionlp would answer one of them.
_MULTI_DAY_WORDS: Final = ("周末", "礼拜末", "星期末", "明后天", "或", "还是")


def _rewrite(text: str) -> str:
    """Cleaned text with colloquial day words in the forms jionlp knows."""
    cleaned = _PUNCT_RE.sub("", _clean(text))
    cleaned = _DAY_ALIAS_RE.sub(lambda m: _DAY_ALIASES[m.group()], cleaned)
    return _ARABIC_WEEKDAY_RE.sub(
        lambda m: m.group(1) + ("日" if m.group(2) == "7" else cn2an.an2cn(m.group(2))),
        cleaned,
    )


def parse_meal_slot(text: str) -> MealSlot | None:
    """Meal slot named in the text: 早饭/早上 breakfast, 午饭/中午 lunch, 晚饭/今晚 dinner."""
    rewritten = _rewrite(text)
    for table in (_MEAL_WORDS, _DAYTIME_WORDS):
        slots = {slot for word, slot in table.items() if word in rewritten}
        if len(slots) == 1:
            return slots.pop()
        if slots:
            return None  # 早饭和午饭: more than one
    return None


_JIONLP_LOCK: Final = threading.Lock()
_jionlp: Any = None


def warm_up() -> None:
    """Import the date library now rather than on the first date parse."""
    global _jionlp
    with _JIONLP_LOCK:
        if _jionlp is None:
            # It prints a banner to stdout; keep the action server's log clean.
            with (
                contextlib.redirect_stdout(io.StringIO()),
                warnings.catch_warnings(),
            ):
                warnings.simplefilter("ignore")
                _jionlp = importlib.import_module("jionlp")


def _jionlp_day(text: str, base: datetime, *, future: bool) -> date | None:
    """The single day jionlp reads in text relative to base, or None."""
    warm_up()
    try:
        with _JIONLP_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = _jionlp.parse_time(text, time_base=base, ret_future=future)
    except Exception:  # jionlp raises ValueError and, on odd input, others
        return None
    if not isinstance(result, dict) or result.get("type") != "time_point":
        return None  # time spans, deltas, periods: not one day
    try:
        start, end = (datetime.fromisoformat(value).date() for value in result["time"])
    except (KeyError, TypeError, ValueError):
        return None
    return start if start == end else None


def parse_date(text: str, *, today: date) -> date | None:
    """The day meant: 今天, 明儿, 大后天, 下周一, 礼拜三, 5号, 11月25日; next on or after today."""
    rewritten = _SLOT_WORD_RE.sub("", _rewrite(text))
    if not rewritten or any(word in rewritten for word in _MULTI_DAY_WORDS):
        return None
    base = datetime.combine(today, dtime.min)
    day = _jionlp_day(rewritten, base, future=False)
    if day is None or day < today:
        # 周一 said on a Wednesday, 5号 said on the 23rd, 31号 in November: the next
        # one. Anchored phrases (昨天, 上周一, 这周一) come back unchanged from ret_future.
        future_day = _jionlp_day(rewritten, base, future=True)
        if future_day is not None and future_day >= today:
            return future_day
    return day


def local_now(now: datetime) -> datetime:
    """The given instant in Asia/Shanghai; a naive datetime is taken as Shanghai time."""
    return now.replace(tzinfo=TZ) if now.tzinfo is None else now.astimezone(TZ)


def parse_when(text: str, *, now: datetime) -> tuple[date | None, MealSlot | None]:
    """Day and meal slot: "明天中午" (tomorrow, lunch), "今晚" (today, dinner)."""
    return parse_date(text, today=local_now(now).date()), parse_meal_slot(text)
