"""TensorFlow predictions called straight on their one compiled graph.

Rasa 3.6 predicts (DIET for each message, TED for each next action) through a `tf.function`
with a fixed input signature, so there is only ever one compiled graph; yet every call goes
through the function's general dispatch (inspecting and converting each of its inputs, looking
up the graph), which in a profile of the chat benchmark cost more than running the graph.
After Rasa's own first call has built the graph, we check the inputs against the graph's
(dtype, rank, fixed sizes: what the dispatch checks for numpy arrays), convert them with
TensorFlow's own eager conversion and call the graph directly; anything that does not fit goes
back to Rasa's own path, which raises its own error.
"""

from typing import Any

import numpy as np
from keras.utils import tf_utils
from rasa.shared.constants import DIAGNOSTIC_DATA
from rasa.utils.tensorflow.models import RasaModel
from tensorflow.python.eager import context
from tensorflow.python.framework import constant_op

_stock_predict = RasaModel._rasa_predict
_GRAPH = "_linli_predict_graph"


def _input_specs(graph: Any) -> list[tuple[np.dtype[Any], tuple[int | None, ...]]]:
    """Each graph input's numpy dtype and shape (None where any size fits)."""
    return [
        (np.dtype(spec.dtype.as_numpy_dtype), tuple(spec.shape.as_list()))
        for spec in graph.structured_input_signature[0][0]
    ]


def _fits(value: Any, dtype: np.dtype[Any], shape: tuple[int | None, ...]) -> bool:
    """Whether an array is what the graph input takes (TensorSpec.is_compatible_with, faster)."""
    return (
        isinstance(value, np.ndarray)
        and value.dtype == dtype
        and value.ndim == len(shape)
        and all(size in (None, actual) for size, actual in zip(shape, value.shape, strict=True))
    )


def _graph_inputs(specs: list[Any], batch_in: tuple[np.ndarray, ...]) -> list[Any] | None:
    """The batch as the graph's input tensors, or None where it does not fit them."""
    if not isinstance(batch_in, tuple) or len(batch_in) != len(specs):
        return None
    if not all(_fits(value, *spec) for value, spec in zip(batch_in, specs, strict=True)):
        return None
    eager = context.context()
    return [constant_op.convert_to_eager_tensor(value, eager) for value in batch_in]


def _rasa_predict(model: RasaModel, batch_in: tuple[np.ndarray, ...]) -> dict[str, Any]:
    """What RasaModel._rasa_predict returns, the graph called directly once it exists."""
    graph, specs = model.__dict__.get(_GRAPH, (None, []))
    inputs = None if graph is None or model._run_eagerly else _graph_inputs(specs, batch_in)
    if inputs is None:
        outputs: dict[str, Any] = _stock_predict(model, batch_in)
        if graph is None and model._tf_predict_step is not None and not model._run_eagerly:
            graph = model._tf_predict_step.get_concrete_function()
            model.__dict__[_GRAPH] = (graph, _input_specs(graph))
        return outputs
    model._training = False
    outputs = tf_utils.sync_to_numpy_or_python_type(
        graph._call_flat(inputs, captured_inputs=graph.captured_inputs)
    )
    if DIAGNOSTIC_DATA in outputs:
        outputs[DIAGNOSTIC_DATA] = model._empty_lists_to_none_in_dict(outputs[DIAGNOSTIC_DATA])
    return outputs


def install_direct_predictions() -> None:
    """Make Rasa's TensorFlow models call their compiled graph directly (idempotent)."""
    RasaModel._rasa_predict = _rasa_predict  # type: ignore[method-assign]
