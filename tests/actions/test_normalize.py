"""Normalisation of residents' words: numerals, addresses, dates, meal slots, ratings, yes/no."""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from actions import normalize
from actions.normalize import (
    TZ,
    Location,
    digits,
    local_now,
    parse_building,
    parse_date,
    parse_location,
    parse_meal_slot,
    parse_quantity,
    parse_rating,
    parse_room,
    parse_unit,
    parse_when,
    to_int,
    yes_no,
)

TODAY = date(2026, 11, 23)  # a Monday
assert TODAY.weekday() == 0
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=TZ)


def day(offset: int) -> date:
    """TODAY plus offset days."""
    return TODAY + timedelta(days=offset)


# --- numbers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("三", 3),
        ("十二", 12),
        ("两", 2),
        ("俩", 2),
        ("仨", 3),
        ("12", 12),
        ("两份", 2),
        ("一份", 1),
        ("二十", 20),
        ("二十五", 25),
        ("一百零八", 108),
        ("廿五", 25),
        ("零", 0),
        ("１２", 12),  # full-width digits
        ("叁", 3),  # formal numeral
        ("三个人的", 3),
        ("我们俩", 2),
        (" 十 二 ", 12),  # speech recognition spacing
        ("", None),
        ("没有", None),
        ("好的", None),
    ],
)
def test_to_int(text: str, expected: int | None) -> None:
    assert to_int(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("五零二", "502"),
        ("幺零二", "102"),
        ("一二零一", "1201"),
        ("502", "502"),
        ("五百零二", "502"),
        ("一千二百零一", "1201"),
        ("1201室", "1201"),
        ("三七五一九二", "375192"),
        ("零三七五一九", "037519"),  # leading zero of a code survives
        ("五〇二", "502"),
        ("五○二", "502"),  # white circle used as zero
        ("5零2", "502"),  # mixed recognizer output
        ("五 零 二", "502"),
        ("幺幺零", "110"),
        ("两零一", "201"),
        ("５０２", "502"),
        ("301号", "301"),
        ("", None),
        ("室", None),
        ("五零二楼上", None),
        ("abc", None),
    ],
)
def test_digits(text: str, expected: str | None) -> None:
    assert digits(text) == expected


# --- addresses -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3栋2单元501", Location(3, 2, "501")),
        ("三号楼二单元五零二", Location(3, 2, "502")),
        ("12号楼301", Location(12, None, "301")),
        ("3号楼2单元", Location(3, 2, None)),
        ("五栋", Location(5, None, None)),
        ("十二幢一单元1201室", Location(12, 1, "1201")),
        ("3-2-501", Location(3, 2, "501")),
        ("3-501", Location(3, None, "501")),
        ("3－2－501", Location(3, 2, "501")),  # full-width hyphens
        ("3—2—501室", Location(3, 2, "501")),
        ("3号2单元501", Location(3, 2, "501")),
        ("三 号楼 二 单元 五 零 二", Location(3, 2, "502")),
        ("三号楼二单元幺零二", Location(3, 2, "102")),
        ("3号楼2单元502号", Location(3, 2, "502")),
        ("二单元五零二", Location(None, 2, "502")),
        ("502", Location(None, None, "502")),
        ("502室", Location(None, None, "502")),
        ("我家是三号楼二单元五零二", Location(3, 2, "502")),
        ("住在幸福里小区十二栋", Location(12, None, None)),
        ("帮我看一下三号楼", Location(3, None, None)),
        # speech recognition homophones of the suffix words
        ("三东二单元五零二", Location(3, 2, "502")),
        ("三好楼二单元", Location(3, 2, None)),
        ("十二撞一单元", Location(12, 1, None)),
        ("3栋2单员501", Location(3, 2, "501")),
        ("", None),
        ("你好", None),
        ("一下", None),
        ("东区", None),
        # a gate of the compound is no building or room
        ("2号门", None),
        ("小区2号大门", None),
        ("3号楼2号门", Location(3, None, None)),
        ("12号门", None),
        ("2号楼门口", Location(2, None, None)),
        ("5栋门口", Location(5, None, None)),
    ],
)
def test_parse_location(text: str, expected: Location | None) -> None:
    assert parse_location(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("三号楼", 3),
        ("3号楼", 3),
        ("12栋", 12),
        ("五幢", 5),
        ("十二号", 12),
        ("7座", 7),
        ("3", 3),
        ("三", 3),
        ("三号楼二单元五零二", 3),
        ("三 号 楼", 3),
        ("三东", 3),
        ("二单元", None),
        ("楼", None),
        ("", None),
    ],
)
def test_parse_building(text: str, expected: int | None) -> None:
    assert parse_building(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2单元", 2),
        ("二单元", 2),
        ("十单元", 10),
        ("2", 2),
        ("两单元", 2),
        ("3栋2单元501", 2),
        ("二单员", 2),
        ("单元", None),
        ("三号楼", None),
    ],
)
def test_parse_unit(text: str, expected: int | None) -> None:
    assert parse_unit(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("五零二", "502"),
        ("301室", "301"),
        ("幺零二", "102"),
        ("1201", "1201"),
        ("五百零二", "502"),
        ("502号", "502"),
        ("三号楼二单元五零二", "502"),
        ("3-2-501", "501"),
        ("三号楼", None),
        ("", None),
    ],
)
def test_parse_room(text: str, expected: str | None) -> None:
    assert parse_room(text) == expected


# --- quantities and ratings ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("两份", 2),
        ("俩", 2),
        ("仨", 3),
        ("三个人的", 3),
        ("一份", 1),
        ("2份", 2),
        ("来两份", 2),
        ("我们俩的", 2),
        ("就我一个人", 1),
        ("一家三口", 3),
        ("十份", 10),
        ("两 份", 2),
        ("零份", None),
        ("一百份", None),
        ("不要", None),
        ("", None),
    ],
)
def test_parse_quantity(text: str, expected: int | None) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("五星", 5),
        ("5分", 5),
        ("5", 5),
        ("五", 5),
        ("一星", 1),
        ("三颗星", 3),
        ("给四分吧", 4),
        ("打个五分", 5),
        ("五星好评", 5),
        ("满意", 5),
        ("很满意", 5),
        ("非常满意", 5),
        ("十分满意", 5),  # 十分 = very, not ten points
        ("满分", 5),
        ("比较满意", 4),
        ("不错", 4),
        ("挺好的", 4),
        ("一般", 3),
        ("一般般", 3),
        ("还行", 3),
        ("还可以吧", 3),
        ("马马虎虎", 3),
        ("差不多", 3),
        ("不太满意", 2),
        ("不是很满意", 2),
        ("不满意", 1),
        ("很不满意", 1),
        ("十分不满意", 1),
        ("太差了", 1),
        ("差评", 1),
        ("六分", None),
        ("零分", None),
        ("10分", None),
        ("不知道", None),
        ("", None),
    ],
)
def test_parse_rating(text: str, expected: int | None) -> None:
    assert parse_rating(text) == expected


# --- yes / no --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("是", True),
        ("是的", True),
        ("对", True),
        ("对对对", True),
        ("好", True),
        ("好的", True),
        ("好嘞", True),
        ("行", True),
        ("行吧", True),
        ("可以", True),
        ("可以的", True),
        ("嗯", True),
        ("嗯嗯", True),
        ("没错", True),
        ("确认", True),
        ("要", True),
        ("没问题", True),
        ("不错", True),
        ("OK", True),
        ("好的，谢谢", True),
        ("对，明天中午", True),
        ("是的，我要两份", True),
        ("不", False),
        ("不是", False),
        ("不对", False),
        ("不要", False),
        ("不要了", False),
        ("不用了", False),
        ("算了", False),
        ("那算了吧", False),
        ("取消", False),
        ("取消吧", False),
        ("别", False),
        ("别了", False),
        ("没有", False),
        ("不了，谢谢", False),
        ("不，我要明天的", False),
        ("不好意思，不要了", False),
        ("但是不要", False),
        ("不 是", False),  # recognizer spacing
        ("不是不行", None),
        ("没有不行", None),
        ("不不不", False),
        ("不要不要", False),
        ("算了不要了", False),
        ("好不好", None),
        ("是不是", None),
        ("行不行", None),
        ("要不要", None),
        ("我不知道", None),
        ("不确定", None),
        ("是吗", None),
        ("再想想", None),
        ("三号楼", None),
        ("", None),
    ],
)
def test_yes_no(text: str, expected: bool | None) -> None:
    assert yes_no(text) is expected


# --- meal slots ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("早饭", "breakfast"),
        ("早餐", "breakfast"),
        ("早上", "breakfast"),
        ("明早", "breakfast"),
        ("午饭", "lunch"),
        ("午餐", "lunch"),
        ("中午", "lunch"),
        ("中饭", "lunch"),
        ("晚饭", "dinner"),
        ("晚餐", "dinner"),
        ("晚上", "dinner"),
        ("今晚", "dinner"),
        ("明晚", "dinner"),
        ("夜饭", "dinner"),  # Shanghainese for dinner
        ("明天中午", "lunch"),
        ("下周一午饭", "lunch"),
        ("早上帮我订午饭", "lunch"),  # the meal word names the meal
        ("早饭和午饭", None),
        ("明天", None),
        ("下午", None),
        ("", None),
    ],
)
def test_parse_meal_slot(text: str, expected: str | None) -> None:
    assert parse_meal_slot(text) == expected


# --- dates (TODAY is Monday 2026-11-23) ------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("今天", day(0)),
        ("明天", day(1)),
        ("明儿", day(1)),
        ("明儿个", day(1)),
        ("今儿", day(0)),
        ("后天", day(2)),
        ("后儿", day(2)),
        ("大后天", day(3)),
        ("大后儿", day(3)),
        ("昨天", day(-1)),
        ("下周一", day(7)),
        ("下星期一", day(7)),
        ("下个礼拜三", day(9)),
        ("下礼拜二", day(8)),
        ("这周五", day(4)),
        ("这周六", day(5)),
        ("本周六", day(5)),
        ("这个礼拜六", day(5)),
        ("周日", day(6)),
        ("周天", day(6)),
        ("星期天", day(6)),
        ("星期日", day(6)),
        ("礼拜三", day(2)),
        ("礼拜一", day(0)),  # said on a Monday: today
        ("周一", day(0)),
        ("周1", day(0)),  # recognizer wrote the digit
        ("星期7", day(6)),
        ("5号", date(2026, 12, 5)),  # the 5th already passed this month
        ("23号", day(0)),
        ("25号", day(2)),
        ("二十五号", day(2)),
        ("廿五号", day(2)),
        ("11月25号", day(2)),
        ("11月25日", day(2)),
        ("十一月二十五号", day(2)),
        ("12月3日", date(2026, 12, 3)),
        ("11月20号", date(2027, 11, 20)),  # passed: next year's
        ("下个月5号", date(2026, 12, 5)),
        ("三天后", day(3)),
        ("今晚", day(0)),
        ("明早", day(1)),
        ("明天中午", day(1)),
        ("后天早上", day(2)),
        ("下周一午饭", day(7)),
        ("明天早饭", day(1)),
        ("明天的午饭", day(1)),
        ("明天 中午", day(1)),
        ("明天吧", day(1)),
        ("那就明天吧", day(1)),
        ("明天，", day(1)),
        ("星期一早上", day(0)),
        ("周六中午", day(5)),
        ("明天晚上七点", day(1)),
        ("下下周三", day(16)),
        ("2026-11-25", day(2)),
        # not one day
        ("中午", None),
        ("周末", None),
        ("这周末", None),
        ("这周", None),
        ("下周", None),
        ("明后天", None),
        ("明天或者后天", None),
        ("明天还是后天", None),
        ("好的", None),
        ("三", None),
        ("", None),
    ],
)
def test_parse_date(text: str, expected: date | None) -> None:
    assert parse_date(text, today=TODAY) == expected


@pytest.mark.parametrize(
    ("today", "text", "expected"),
    [
        (date(2026, 11, 25), "周一", date(2026, 11, 30)),  # Wednesday: next Monday
        (date(2026, 11, 25), "礼拜三", date(2026, 11, 25)),  # today
        (date(2026, 11, 25), "这周一", date(2026, 11, 23)),  # anchored, past as said
        (date(2026, 11, 25), "上周一", date(2026, 11, 16)),
        (date(2026, 11, 29), "下周一", date(2026, 11, 30)),  # Sunday: tomorrow
        (date(2026, 12, 31), "明天", date(2027, 1, 1)),
        (date(2026, 12, 30), "大后天", date(2027, 1, 2)),
        (date(2026, 12, 20), "1月3号", date(2027, 1, 3)),
        (date(2026, 11, 30), "31号", date(2026, 12, 31)),  # November has no 31st
    ],
)
def test_parse_date_other_days(today: date, text: str, expected: date) -> None:
    assert parse_date(text, today=today) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("明天中午", (day(1), "lunch")),
        ("今晚", (day(0), "dinner")),
        ("后天早上", (day(2), "breakfast")),
        ("下周一午饭", (day(7), "lunch")),
        ("明儿晚饭", (day(1), "dinner")),
        ("明早", (day(1), "breakfast")),
        ("大后天中饭", (day(3), "lunch")),
        ("星期一早上", (day(0), "breakfast")),
        ("礼拜三的晚餐", (day(2), "dinner")),
        ("明 天 中 午", (day(1), "lunch")),
        ("中午", (None, "lunch")),
        ("明天", (day(1), None)),
        ("随便", (None, None)),
    ],
)
def test_parse_when(text: str, expected: tuple[date | None, str | None]) -> None:
    assert parse_when(text, now=NOW) == expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 11, 23, 10, 0, tzinfo=TZ), day(1)),
        # 23:30 UTC on the 22nd is 07:30 on the 23rd in Shanghai.
        (datetime(2026, 11, 22, 23, 30, tzinfo=UTC), day(1)),
        # 17:00 UTC on the 23rd is already the 24th in Shanghai.
        (datetime(2026, 11, 23, 17, 0, tzinfo=UTC), day(2)),
        (datetime(2026, 11, 23, 23, 59), day(1)),  # naive: Shanghai time
    ],
)
def test_parse_when_uses_shanghai_date(now: datetime, expected: date) -> None:
    assert parse_when("明天", now=now)[0] == expected


def test_local_now() -> None:
    assert local_now(datetime(2026, 11, 22, 16, 0, tzinfo=UTC)) == datetime(
        2026, 11, 23, 0, 0, tzinfo=TZ
    )
    assert local_now(datetime(2026, 11, 23, 8, 0)).tzinfo is TZ


def test_date_library_loads_quietly(capsys: pytest.CaptureFixture[str]) -> None:
    normalize.warm_up()
    normalize.warm_up()  # idempotent
    assert normalize._jionlp is not None
    assert capsys.readouterr().out == ""


def test_import_does_not_load_date_library() -> None:
    import subprocess
    import sys

    code = "import sys, actions.normalize; print('jionlp' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    ).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("反对", False), ("我反对", False), ("赞成", True), ("嗯…我想想", None), ("让我想一想", None)],
)
def test_yes_no_does_not_read_oppose_or_hesitation_as_yes(text: str, expected: bool | None) -> None:
    assert normalize.yes_no(text) is expected
