"""Text as it should be spoken: numbers, dates, times and room numbers read the way people say them.

espeak-ng's Mandarin voice reads "501" as 五百零一 and "14:30" digit by digit; residents say
五零一 and 下午两点半. Value readings come from cn2an (as in actions/normalize.py, which voice
must not import); the rules here only decide which reading a number gets.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from typing import Final

import cn2an

# Full-width digits, letters and %: to ASCII. Chinese punctuation stays (it shapes pauses).
_FULLWIDTH: Final = {
    code: unicodedata.normalize("NFKC", chr(code))
    for code in range(0xFF01, 0xFF5F)
    if chr(code).isalnum() or chr(code) in "％．"
}
_DIGIT: Final = dict(zip("0123456789", "零一二三四五六七八九", strict=True))
# Words after which a number is a quantity, read by value (2份 两份, 12元 十二元).
_MEASURES: Final = "元块角毛分秒岁人份个位次天周年月日号点米斤件张条把间户栋层楼台辆碗杯盒瓶"
_TWO_OK: Final = "份个位次天周岁人件张条把间户台辆碗杯盒瓶点"


def digits_reading(number: str, *, yao: bool = False) -> str:
    """Digit by digit: "501" 五零一; with yao, 1 is 幺 as in phone numbers."""
    out = "".join(_DIGIT[d] for d in number if d.isdigit())
    return out.replace("一", "幺") if yao else out


def value_reading(number: str) -> str:
    """By value: "12" 十二, "105" 一百零五, "2000" 两千, "12.5" 十二点五."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = str(cn2an.an2cn(number, "low"))
    # People say 两百/两千/两万 at the head of a number, not 二百.
    return re.sub(r"^二(?=[百千万亿])", "两", text)


def _hour_minute(hour: int, minute: int) -> str:
    """24-hour clock time as spoken: 14:30 下午两点半, 09:05 九点零五分."""
    if hour > 24 or minute > 59:
        return f"{value_reading(str(hour))}点{value_reading(str(minute))}分"
    period = ""
    if hour == 0 or hour == 24:
        period, hour = "凌晨", 12
    elif 13 <= hour <= 17:
        period, hour = "下午", hour - 12
    elif hour >= 18:
        period, hour = "晚上", hour - 12
    spoken_hour = "两" if hour == 2 else value_reading(str(hour))
    if minute == 0:
        tail = ""
    elif minute == 30:
        tail = "半"
    elif minute < 10:
        tail = f"零{_DIGIT[str(minute)]}分"
    else:
        tail = f"{value_reading(str(minute))}分"
    return f"{period}{spoken_hour}点{tail}"


def _date(year: str | None, month: str, day: str, day_word: str) -> str:
    spoken = f"{digits_reading(year)}年" if year else ""
    return f"{spoken}{value_reading(str(int(month)))}月{value_reading(str(int(day)))}{day_word}"


_RULES: Final = re.compile(
    r"""
    (?P<date>(?P<y>\d{4})[-/.年](?P<m>\d{1,2})[-/.月](?P<d>\d{1,2})(?P<dw>[日号])?)
  | (?P<md>(?P<m2>\d{1,2})月(?P<d2>\d{1,2})(?P<dw2>[日号]))
  | (?P<year>(?P<y3>\d{4})年)
  | (?P<clock>(?P<h>\d{1,2})[:：](?P<mi>\d{2})(?![:\d]))
  | (?P<pct>(?P<p>\d+(?:\.\d+)?)[%％])
  | (?P<place>(?P<pn>\d+)(?P<pw>号楼|栋|幢|座|单元|层|楼))
  | (?P<num>\d+(?:\.\d+)?)(?P<rw>室|号房|房间)?
    """,
    re.VERBOSE,
)
# A short range between numbers ("9-11点", "3~5天") is read with 到; dates are left alone.
_RANGE: Final = re.compile(r"(?<![\d\-/.])(\d{1,3})\s*[-~～]\s*(\d{1,3})(?![\d\-/.])")
# A 3-4 digit number right after a building or unit word is a room: 五零一, not 五百零一.
_ROOM_CONTEXT: Final = re.compile(r"(?:号楼|栋|幢|座|单元|楼)$")


def _number(number: str, room_word: str, before: str, after: str) -> str:
    """One bare number, read by how it is used."""
    if "." in number:
        return value_reading(number) + room_word
    if room_word or (3 <= len(number) <= 4 and _ROOM_CONTEXT.search(before)):
        return digits_reading(number) + room_word
    if len(number) >= 7:  # phone numbers and ids: 1 is 幺 so that it is not heard as 七
        return digits_reading(number, yao=True)
    quantity = bool(after) and after in _MEASURES
    if (len(number) >= 5 or (len(number) > 1 and number.startswith("0"))) and not quantity:
        return digits_reading(number)  # codes, numbers with leading zeros
    if number == "2" and after and after in _TWO_OK and not before.endswith("第"):
        return "两"
    return value_reading(number)


def _replace(match: re.Match[str], text: str) -> str:
    if match.group("date"):
        day_word = match.group("dw") or "日"
        return _date(match.group("y"), match.group("m"), match.group("d"), day_word)
    if match.group("md"):
        return _date(None, match.group("m2"), match.group("d2"), match.group("dw2"))
    if match.group("year"):
        return digits_reading(match.group("y3")) + "年"
    if match.group("clock"):
        return _hour_minute(int(match.group("h")), int(match.group("mi")))
    if match.group("pct"):
        return "百分之" + value_reading(match.group("p"))
    if match.group("place"):
        return value_reading(str(int(match.group("pn")))) + match.group("pw")
    before = text[: match.start()]
    after = text[match.end() : match.end() + 1]
    return _number(match.group("num"), match.group("rw") or "", before, after)


def for_speech(text: str) -> str:
    """Text for the synthesiser: "3栋2单元501" 三栋二单元五零一, "14:30" 下午两点半."""
    text = _RANGE.sub(r"\1到\2", text.translate(_FULLWIDTH))
    return _RULES.sub(lambda m: _replace(m, text), text)
