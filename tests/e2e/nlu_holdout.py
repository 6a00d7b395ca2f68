"""Read the held-out NLU split (Rasa's markdown-like YAML annotations) without Rasa."""

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

HOLDOUT = Path(__file__).resolve().parents[2] / "bot" / "tests" / "nlu_holdout.yml"
# [span](entity) or [span]{"entity": "x", "value": "y"}
_ANNOTATION = re.compile(r"\[([^\]]+)\](?:\((\w+)\)|\{[^}]*\"entity\":\s*\"(\w+)\"[^}]*\})")


@dataclass(frozen=True)
class Example:
    """One annotated utterance."""

    text: str
    intent: str
    entities: frozenset[tuple[str, str]]  # (entity, span text)


def parse_line(line: str, intent: str) -> Example:
    """Strip annotations from one example line, keeping (entity, span) pairs."""
    entities: set[tuple[str, str]] = set()

    def keep(match: re.Match[str]) -> str:
        entities.add((match.group(2) or match.group(3), match.group(1)))
        return match.group(1)

    return Example(_ANNOTATION.sub(keep, line), intent, frozenset(entities))


def load(path: Path = HOLDOUT) -> list[Example]:
    """Every example of the split."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    examples = []
    for block in data["nlu"]:
        for raw in block["examples"].splitlines():
            line = raw.strip().removeprefix("- ").strip()
            if line:
                examples.append(parse_line(line, block["intent"]))
    return examples
