"""Run in Rasa's Python (.venv-rasa) from bot/: every next action of the test stories, TED always
asked (Rasa's way) and TED skipped where another policy decides (ours).

Usage: prediction_probe.py MODEL. Prints one JSON object on its last line: for each way, every
prediction Rasa's ensemble made (probabilities, policy, events, flags) while replaying the test
stories and while the bot chats with itself from held-out utterances (no actions run, so it
reaches states no story covers, where TED decides), and how many times TED itself ran.
"""

import asyncio
import json
import sys
from typing import Any

import rasa_speedups
from loading_probe import holdout_texts
from rasa.core.agent import Agent
from rasa.core.policies.ted_policy import TEDPolicy
from rasa.core.processor import MessageProcessor
from rasa.core.test import _create_data_generator, _predict_tracker_actions
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME
from rasa.shared.core.events import ActionExecuted, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa_speedups import decided_predictions

STORIES = "tests/stories"
PREDICTIONS: list[dict[str, Any]] = []
TED_RUNS: list[int] = []


def record_predictions() -> None:
    """Keep every prediction of Rasa's ensemble and count TED's own runs."""
    predict = MessageProcessor._predict_next_with_tracker
    ted_predict = TEDPolicy.predict_action_probabilities

    def recorded(processor: MessageProcessor, tracker: Any) -> Any:
        prediction = predict(processor, tracker)
        PREDICTIONS.append({
            "probabilities": [round(p, 6) for p in prediction.probabilities],
            "policy": prediction.policy_name,
            "priority": prediction.policy_priority,
            "events": [str(event) for event in prediction.events],
            "optional_events": [str(event) for event in prediction.optional_events],
            "end_to_end": prediction.is_end_to_end_prediction,
            "no_user": prediction.is_no_user_prediction,
            "hide_rule_turn": prediction.hide_rule_turn,
            "action_metadata": prediction.action_metadata,
        })
        return prediction

    def counted(policy: TEDPolicy, *args: Any, **kwargs: Any) -> Any:
        TED_RUNS.append(1)
        return ted_predict(policy, *args, **kwargs)

    MessageProcessor._predict_next_with_tracker = recorded
    TEDPolicy.predict_action_probabilities = counted


async def replay(agent: Agent) -> dict[str, Any]:
    """Every test story replayed, each next action predicted."""
    PREDICTIONS.clear()
    TED_RUNS.clear()
    generator = _create_data_generator(STORIES, agent, use_conversation_test_files=True)
    trackers = generator.generate_story_trackers()  # in no fixed order
    for tracker in sorted(trackers, key=lambda t: (t.sender_id, len(t.events))):
        await _predict_tracker_actions(tracker, agent)
    for first in range(0, 240, 4):
        await self_play(agent, holdout_texts()[first : first + 3])
    return {"predictions": list(PREDICTIONS), "ted_runs": len(TED_RUNS)}


async def self_play(agent: Agent, texts: list[str]) -> None:
    """Say each text in turn; after each, take up to four predicted actions without running them."""
    assert agent.processor is not None
    assert agent.domain is not None
    tracker = DialogueStateTracker.from_events(
        "self-play",
        [ActionExecuted(ACTION_SESSION_START_NAME), SessionStarted(),
         ActionExecuted(ACTION_LISTEN_NAME)],
        agent.domain.slots,
    )
    for text in texts:
        parse = await agent.parse_message(text)
        tracker.update(UserUttered(text, parse["intent"], parse["entities"], parse))
        for _ in range(4):
            prediction = agent.processor._predict_next_with_tracker(tracker)
            action = agent.domain.action_names_or_texts[prediction.max_confidence_index]
            tracker.update(ActionExecuted(action, prediction.policy_name,
                                          prediction.max_confidence))
            if action == ACTION_LISTEN_NAME:
                break


async def main(model: str) -> dict[str, Any]:
    """Rasa's way first, then with TED skipped where decided; all other speed-ups in both."""
    rasa_speedups.install()
    DaskGraphRunner._build_dask_graph = decided_predictions._stock_build
    record_predictions()
    agent = Agent.load(model)
    stock = await replay(agent)
    decided_predictions.install_decided_predictions()
    ours = await replay(agent)
    return {"stock": stock, "ours": ours}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1])), ensure_ascii=False, default=str))
