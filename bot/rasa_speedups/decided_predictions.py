"""TED is not asked for the next action when another policy's answer already wins.

Rasa 3.6 runs every policy for every next action and then picks one: the highest confidence,
ties going to the policy of higher priority. The rule and memoization policies answer with
confidence 1.0 whenever a rule, a form or a remembered story decides, which is most turns of
our form-driven conversations, and TED (priority 1, below both) can then never be picked:
its confidences are at most 1.0, it adds no events of its own, and without end-to-end training
(no text features) it never makes the end-to-end predictions that would outrank them. So in
the graph, TED's task waits for the other policies and, when one of them has already decided,
returns a prediction of all zeros (the loser it would have been) instead of running TED: in a
profile of the chat benchmark TED was a quarter of Rasa's CPU per turn.

Not skipped: when the last action was rejected (Rasa then zeroes that action in every
prediction, which could let TED win), when TED could predict end to end, and when hooks watch
the TED node.
"""

from typing import Any

from rasa.core.policies.policy import Policy, PolicyPrediction
from rasa.core.policies.ted_policy import TEDPolicy
from rasa.engine.graph import GraphNode, GraphSchema
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActionExecutionRejected
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import TEXT

_stock_build = DaskGraphRunner._build_dask_graph


class TEDUnlessDecided:
    """TED's graph task: TED's own prediction, or zeros where another policy already wins."""

    def __init__(self, node: GraphNode, ted: TEDPolicy, own_inputs: int) -> None:
        self.node, self.ted, self.own_inputs = node, ted, own_inputs

    def __call__(self, *results: tuple[str, Any]) -> tuple[str, Any]:
        """Run TED's node, unless the other policies' results (after its own inputs) decide."""
        own, others = results[: self.own_inputs], results[self.own_inputs :]
        values = [value for _, value in own]
        tracker = next((v for v in values if isinstance(v, DialogueStateTracker)), None)
        domain = next((v for v in values if isinstance(v, Domain)), None)
        if tracker is None or domain is None or not self._decided(others, tracker):
            return self.node(*own)
        zeros = [0.0] * len(domain.action_names_or_texts)
        return self.node._node_name, self.ted._prediction(zeros)

    def _decided(self, others: tuple[tuple[str, Any], ...], tracker: DialogueStateTracker) -> bool:
        """Whether another policy's prediction is certain to be picked over any of TED's."""
        if _last_action_was_rejected(tracker):
            return False
        return any(
            isinstance(prediction, PolicyPrediction)
            and prediction.max_confidence >= 1.0
            and prediction.policy_priority > self.ted.priority
            and not prediction.is_end_to_end_prediction
            for _, prediction in others
        )


def _last_action_was_rejected(tracker: DialogueStateTracker) -> bool:
    """What makes Rasa's ensemble zero the rejected action in every prediction."""
    last = next(
        (e for e in reversed(tracker.events)
         if isinstance(e, ActionExecutionRejected | ActionExecuted)),
        None,
    )
    return isinstance(last, ActionExecutionRejected)


def _skippable_ted(node: GraphNode) -> TEDPolicy | None:
    """The node's TED policy, if its prediction can be skipped at all."""
    ted = node._component
    if type(ted) is not TEDPolicy or node._hooks:
        return None
    if ted.only_e2e or TEXT in ted.fake_features:
        return None
    return ted


def _build_dask_graph(runner: DaskGraphRunner, schema: GraphSchema) -> dict[str, Any]:
    """Rasa's dask graph, TED's task made to wait for the other policies' predictions."""
    graph: dict[str, Any] = _stock_build(runner, schema)
    nodes = runner._instantiated_nodes
    policies = [name for name in graph if isinstance(nodes[name]._component, Policy)]
    for name in policies:
        ted = _skippable_ted(nodes[name])
        others = [other for other in policies if other != name]
        if ted is None or not others:
            continue
        own_needs = graph[name][1:]
        graph[name] = (TEDUnlessDecided(nodes[name], ted, len(own_needs)), *own_needs, *others)
    return graph


def install_decided_predictions() -> None:
    """Make Rasa skip TED where another policy's prediction wins anyway (idempotent)."""
    DaskGraphRunner._build_dask_graph = _build_dask_graph  # type: ignore[method-assign]
