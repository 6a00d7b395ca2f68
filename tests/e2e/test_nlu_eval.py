"""NLU evaluation on the in-repo held-out split, through the running Rasa server."""

import json

import httpx

from tests.e2e.nlu_holdout import load, parse_line
from tests.e2e.stack import ROOT, Stack

GOAL_INTENT_ACCURACY = 0.95
REPORT = ROOT / "var" / "nlu_eval.json"


def test_holdout_parses_annotations() -> None:
    example = parse_line('我家[3栋](building)要[两份]{"entity": "quantity"}', "book_meal")
    assert example.text == "我家3栋要两份"
    assert example.entities == {("building", "3栋"), ("quantity", "两份")}


def test_intent_accuracy_and_entity_f1_on_holdout(stack: Stack) -> None:
    examples = load()
    correct = 0
    true_positive = predicted_total = expected_total = 0
    misses = []
    with httpx.Client(timeout=30) as client:
        for example in examples:
            parsed = client.post(
                f"{stack.rasa_url}/model/parse",
                params={"token": stack.rasa_token},
                json={"text": example.text},
            ).json()
            intent = parsed["intent"]["name"]
            correct += intent == example.intent
            if intent != example.intent:
                misses.append((example.text, example.intent, intent))
            found = {(e["entity"], example.text[e["start"] : e["end"]]) for e in parsed["entities"]}
            true_positive += len(found & example.entities)
            predicted_total += len(found)
            expected_total += len(example.entities)
    accuracy = correct / len(examples)
    precision = true_positive / predicted_total if predicted_total else 1.0
    recall = true_positive / expected_total if expected_total else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    report = {
        "examples": len(examples),
        "intent_accuracy": round(accuracy, 4),
        "entity_precision": round(precision, 4),
        "entity_recall": round(recall, 4),
        "entity_f1": round(f1, 4),
        "misclassified": misses,
    }
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"\nNLU holdout: intent accuracy {accuracy:.3f}, entity F1 {f1:.3f} ({REPORT})")
    assert accuracy >= GOAL_INTENT_ACCURACY, misses
