"""Run in Rasa's Python (.venv-rasa) from bot/: load the trained model, Rasa's way or ours.

Usage: loading_probe.py MODEL {stock,ours,unmatched} (unmatched: ours, with predictions that
create a weight no checkpoint holds, which must make it load the model Rasa's way). Prints one
JSON object on its last line: how many Keras training runs loading took and its seconds, a
digest of every TensorFlow variable of DIET and TED, DIET's parse of every held-out utterance,
TED's own action probabilities after every eighth of them, and how many of those predictions
went through tf.function's dispatch.
"""

import asyncio
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import rasa_speedups
import tensorflow as tf
import yaml
from rasa.core.agent import Agent
from rasa.core.policies.ted_policy import TED, TEDPolicy
from rasa.nlu.classifiers.diet_classifier import DIET, DIETClassifier
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

HOLDOUT = Path(__file__).parents[2] / "bot" / "tests" / "nlu_holdout.yml"
FITS: list[str] = []


def count_training_runs() -> None:
    """Record every Keras `fit`, by model class."""
    fit = tf.keras.Model.fit

    def counted(model: tf.keras.Model, *args: Any, **kwargs: Any) -> Any:
        FITS.append(type(model).__name__)
        return fit(model, *args, **kwargs)

    tf.keras.Model.fit = counted


def holdout_texts() -> list[str]:
    """The held-out utterances, annotations removed."""
    texts = []
    for block in yaml.safe_load(HOLDOUT.read_text(encoding="utf-8"))["nlu"]:
        for line in block["examples"].splitlines():
            text = line.removeprefix("- ").strip()
            for mark in ("[", "]"):
                text = text.replace(mark, "")
            while "(" in text:
                start = text.index("(")
                text = text[:start] + text[text.index(")", start) + 1 :]
            texts.append(text)
    return texts


def component(agent: Agent, kind: type) -> Any:
    """The loaded graph component of this class."""
    nodes = agent.processor.graph_runner._instantiated_nodes  # type: ignore[union-attr]
    return next(node._component for node in nodes.values() if isinstance(node._component, kind))


def digest(model: Any) -> dict[str, str]:
    """Every variable of a TensorFlow model, by name, as a hash of its value."""
    return {
        variable.name: hashlib.sha256(variable.numpy().tobytes()).hexdigest()[:16]
        for variable in model.weights
    }


class CountedCalls:
    """A tf.function standing in for a model's own, counting the calls that reach it."""

    def __init__(self, function: Any) -> None:
        self.function = function
        self.calls = 0

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        return self.function(*args)

    def get_concrete_function(self) -> Any:
        """The wrapped function's compiled graph."""
        return self.function.get_concrete_function()


def count_dispatched_calls(model: Any) -> CountedCalls:
    """Count the predictions that go through the model's tf.function from now on."""
    counted = CountedCalls(model._tf_predict_step)
    model.__dict__["_tf_predict_step"] = counted
    return counted


def ted_probabilities(agent: Agent, parse: dict[str, Any]) -> list[float]:
    """TED's own action probabilities right after the resident said this."""
    tracker = DialogueStateTracker.from_events(
        "probe",
        [ActionExecuted("action_listen"), UserUttered(parse["text"], parse["intent"],
                                                      parse["entities"], parse)],
        slots=agent.domain.slots,  # type: ignore[union-attr]
    )
    ted = component(agent, TEDPolicy)
    prediction = ted.predict_action_probabilities(tracker, agent.domain)
    return [round(p, 6) for p in prediction.probabilities]


def add_weight_missing_from_checkpoints() -> None:
    """Make predicting create a weight that no checkpoint holds (as another Rasa might)."""
    for model_class in (DIET, TED):
        prepare = model_class.prepare_for_predict

        def prepared(model: Any, prepare: Any = prepare) -> None:
            model.probe_extra = tf.Variable(1.0, name="probe_extra")
            prepare(model)

        model_class.prepare_for_predict = prepared


async def main(model: str, how: str) -> dict[str, Any]:
    """Load, answer every held-out utterance, describe the result."""
    count_training_runs()
    if how in ("ours", "unmatched"):
        rasa_speedups.install()
        rasa_speedups.install()  # twice: idempotent
    if how == "unmatched":
        add_weight_missing_from_checkpoints()
    started = time.perf_counter()
    agent = Agent.load(model)
    load_seconds = time.perf_counter() - started
    diet, ted = component(agent, DIETClassifier).model, component(agent, TEDPolicy).model
    dispatched = {"diet": count_dispatched_calls(diet), "ted": count_dispatched_calls(ted)}
    parses = [await agent.parse_message(text) for text in holdout_texts()]
    return {
        "training_runs": FITS,
        "load_seconds": round(load_seconds, 2),
        "diet_weights": digest(diet),
        "ted_weights": digest(ted),
        "parses": parses,
        "ted": [ted_probabilities(agent, parse) for parse in parses[::8]],
        "dispatched_calls": {name: counted.calls for name, counted in dispatched.items()},
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2])), ensure_ascii=False, default=str))
