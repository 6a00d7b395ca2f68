"""The telephone keypad: what a key means for the question the bot is asking.

- ``0`` reaches a person at any time, ``*`` repeats the last message;
- yes/no and choice questions: the option's key sends its button payload;
- number questions: digits until ``#`` (or until no further digit could stay in range);
- digits questions (codes): exactly ``length`` digits; here ``0`` is a digit and ``*``
  starts the entry again;
- no question pending: a small main menu (the same order as the dialogue's own fallback menu).

The keypad hints ("请说“是”或按1") are added to the spoken question when it has none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The main menu when the bot asks nothing: key -> (label, payload).
MAIN_MENU: dict[str, tuple[str, str]] = {
    "1": ("报修", "/report_repair"),
    "2": ("订餐", "/book_meal"),
    "3": ("提建议", "/submit_proposal"),
    "4": ("投票", "/list_votes"),
}
HANDOFF = "/human_handoff"
KEY_WORDS = {"*": "星号", "#": "井号"}

MENU_HINT = (
    "也可以按键：" + "，".join(f"{label}按{key}" for key, (label, _) in MAIN_MENU.items())
    + "，找人工按0。"
)
NUMBER_HINT = "也可以按数字键，按完再按井号键。"
DIGITS_HINT = "也可以用按键输入。"
NO_MATCH_OPTIONS = "请按{keys}，找人工按0。"
NO_MATCH_FREE = "这个问题请直接说出来，找人工请按0。"
NO_MATCH_NUMBER = "请输入{low}到{high}之间的数字，再按井号键。"
NO_MATCH_DIGITS = "请输入{length}位数字。"


@dataclass(frozen=True)
class Send:
    """Send this text or payload as the caller's answer."""

    text: str


@dataclass(frozen=True)
class Handoff:
    """The caller wants a person."""


@dataclass(frozen=True)
class Repeat:
    """Say the last message again."""


@dataclass(frozen=True)
class NoMatch:
    """The key means nothing here; tell the caller what works."""

    hint: str


@dataclass(frozen=True)
class Pending:
    """A digit of a longer entry was taken; more may follow."""


KeyAction = Send | Handoff | Repeat | NoMatch | Pending


def _options(expect: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for o in expect.get("options") or [] if isinstance(o, dict)]


def _keys_text(keys: list[str]) -> str:
    if len(keys) == 2:
        return f"{keys[0]}或{keys[1]}"
    if len(keys) > 2 and keys == [str(n) for n in range(int(keys[0]), int(keys[0]) + len(keys))]:
        return f"{keys[0]}到{keys[-1]}"
    return "、".join(keys)


@dataclass
class Keypad:
    """Turns keys into answers for the question pending (``expect`` from the dialogue)."""

    entry: str = ""
    _entry_expect: dict[str, Any] | None = field(default=None, repr=False)

    def collecting(self) -> bool:
        """Whether a multi-digit entry is under way (a timeout then sends it)."""
        return bool(self.entry)

    def reset(self) -> None:
        """Forget a partial entry (a new question was asked)."""
        self.entry = ""
        self._entry_expect = None

    def press(self, key: str, expect: dict[str, Any] | None) -> KeyAction:
        """What `key` means while `expect` is pending."""
        kind = (expect or {}).get("type")
        if self.entry and expect is not self._entry_expect:
            self.reset()  # the question changed under a half-typed entry
        if kind == "digits":
            return self._digits(key, expect or {})
        if key == "0" and not self.entry:
            return Handoff()
        if key == "*":
            self.reset()
            return Repeat()
        if kind == "number":
            return self._number(key, expect or {})
        if key == "#":
            return Pending()
        if kind in ("yes_no", "choice"):
            for option in _options(expect or {}):
                if str(option.get("key")) == key and option.get("payload"):
                    return Send(str(option["payload"]))
            keys = [str(o.get("key")) for o in _options(expect or {})]
            return NoMatch(NO_MATCH_OPTIONS.format(keys=_keys_text(keys)))
        if kind == "free_text":
            return NoMatch(NO_MATCH_FREE)
        if key in MAIN_MENU:
            return Send(MAIN_MENU[key][1])
        return NoMatch(NO_MATCH_OPTIONS.format(keys=_keys_text(list(MAIN_MENU))))

    def timeout(self, expect: dict[str, Any] | None) -> KeyAction:
        """No key for a while: send a number entry as it is, drop an incomplete code."""
        entry, entry_expect = self.entry, self._entry_expect
        self.reset()
        if not entry or entry_expect is not expect:
            return Pending()
        if (expect or {}).get("type") == "number":
            return self._finish_number(entry, expect or {})
        length = int((expect or {}).get("length") or 0)
        return NoMatch(NO_MATCH_DIGITS.format(length=length))

    def _number(self, key: str, expect: dict[str, Any]) -> KeyAction:
        if key == "#":
            entry = self.entry
            self.reset()
            if not entry:
                return NoMatch(self._number_hint(expect))
            return self._finish_number(entry, expect)
        if not key.isdigit():
            return NoMatch(self._number_hint(expect))
        self.entry += key
        self._entry_expect = expect
        high = expect.get("max")
        # Done as soon as another digit could only leave the range (max 10: "2" is final).
        if isinstance(high, int) and int(self.entry) * 10 > high:
            entry = self.entry
            self.reset()
            return self._finish_number(entry, expect)
        return Pending()

    def _finish_number(self, entry: str, expect: dict[str, Any]) -> KeyAction:
        value = int(entry)
        low, high = expect.get("min"), expect.get("max")
        if (isinstance(low, int) and value < low) or (isinstance(high, int) and value > high):
            return NoMatch(self._number_hint(expect))
        # A unit the question counts in ("份") makes the answer read as said: "2份".
        unit = expect.get("unit")
        return Send(f"{value}{unit}" if isinstance(unit, str) else str(value))

    @staticmethod
    def _number_hint(expect: dict[str, Any]) -> str:
        low, high = expect.get("min"), expect.get("max")
        if isinstance(low, int) and isinstance(high, int):
            return NO_MATCH_NUMBER.format(low=low, high=high)
        return NUMBER_HINT

    def _digits(self, key: str, expect: dict[str, Any]) -> KeyAction:
        length = int(expect.get("length") or 0)
        if key == "*":
            if self.entry:
                self.reset()
                return Pending()  # start the code again
            return Repeat()
        if key == "#":
            entry = self.entry
            self.reset()
            if entry and (not length or len(entry) == length):
                return Send(entry)
            return NoMatch(NO_MATCH_DIGITS.format(length=length))
        if not key.isdigit():
            return NoMatch(NO_MATCH_DIGITS.format(length=length))
        self.entry += key
        self._entry_expect = expect
        if length and len(self.entry) >= length:
            entry = self.entry
            self.reset()
            return Send(entry)
        return Pending()


def keypad_hint(expect: dict[str, Any] | None) -> str:
    """What to add to a spoken question so keypad users know their keys ("" for none)."""
    kind = (expect or {}).get("type")
    options = _options(expect or {})
    if kind == "yes_no" and options:
        first, *rest = options
        parts = [f"请说“{first.get('label')}”或按{first.get('key')}"]
        parts += [f"“{o.get('label')}”按{o.get('key')}" for o in rest]
        return "，".join(parts) + "。"
    if kind == "choice" and options:
        return "，".join(f"{o.get('label')}按{o.get('key')}" for o in options) + "。"
    if kind == "number":
        return NUMBER_HINT
    if kind == "digits":
        return DIGITS_HINT
    return ""


def with_hint(text: str, expect: dict[str, Any] | None) -> str:
    """The question with its keypad hint, unless it already names keys."""
    hint = keypad_hint(expect)
    if not hint or "按" in text:
        return text
    return f"{text}{hint}"
