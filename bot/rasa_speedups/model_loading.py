"""Rasa's TensorFlow models loaded to answer, without first running a training step.

Rasa 3.6 builds each TensorFlow model's weights (DIET, TED) by running one Keras `fit` step on
one example, tracing the whole training graph with its gradients, and only then loads the saved
weights over them: about three quarters of Rasa's cold start on a 2-core machine. TensorFlow
checkpoints restore a variable the moment it is created, so a model can load its weights first
and create them by predicting on the example Rasa keeps for that purpose, with the same values.
Before the model is used, every variable it created must have been matched in the checkpoint;
otherwise (and to fine-tune, which needs the optimizer's state) Rasa's own loading is used.
"""

import logging
from typing import Any

import tensorflow as tf
from rasa.utils.tensorflow.constants import LEARNING_RATE, RUN_EAGERLY
from rasa.utils.tensorflow.model_data import RasaModelData
from rasa.utils.tensorflow.models import RasaModel

logger = logging.getLogger(__name__)

_stock_load = RasaModel.load.__func__  # type: ignore[attr-defined]


def _load_to_answer(
    cls: type[RasaModel],
    model_file_name: str,
    model_data_example: RasaModelData,
    predict_data_example: RasaModelData | None = None,
    finetune_mode: bool = False,
    *args: Any,
    **kwargs: Any,
) -> RasaModel:
    """What RasaModel.load returns, built by a prediction instead of a training step."""

    def rasas_way() -> RasaModel:
        return _stock_load(  # type: ignore[no-any-return]
            cls, model_file_name, model_data_example, predict_data_example, finetune_mode,
            *args, **kwargs,
        )

    if finetune_mode or predict_data_example is None:
        return rasas_way()
    model = cls(*args, **kwargs)
    config = kwargs.get("config", {})
    model.compile(
        optimizer=tf.keras.optimizers.Adam(config.get(LEARNING_RATE, 0.001)),
        run_eagerly=config.get(RUN_EAGERLY),
    )
    status = model.load_weights(model_file_name)
    model.run_inference(predict_data_example)
    try:
        status.assert_existing_objects_matched()
    except AssertionError:
        logger.warning("Weights of %s not all in its checkpoint; loading it as Rasa does", cls)
        return rasas_way()
    # The optimizer's slots are in the checkpoint too; only training would need them.
    status.expect_partial()
    return model


def install_loading_to_answer() -> None:
    """Make Rasa load its TensorFlow models without a training step (idempotent)."""
    RasaModel.load = classmethod(_load_to_answer)  # type: ignore[assignment,method-assign]
