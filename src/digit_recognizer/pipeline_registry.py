"""The project's pipelines, registered by name.

The registry is explicit rather than ``find_pipelines()``: that way ``kedro run --pipeline conv``
finds ``conv`` although it is composed here from the shared training template.
"""

from kedro.pipeline import Pipeline

from digit_recognizer.config import ENSEMBLE_CANDIDATES
from digit_recognizer.ml.models import ARCHITECTURES
from digit_recognizer.pipelines import data_processing, ensemble, reporting, training

LEARNED = [name for name in ARCHITECTURES if name != "centroid"]


def register_pipelines() -> dict[str, Pipeline]:
    processing = data_processing.create_pipeline()
    architectures = list(ARCHITECTURES)  # one namespace each: linear, mlp, conv, cnn, centroid
    extra_members = [name for name in ENSEMBLE_CANDIDATES if name not in architectures]  # cnn_seed1, cnn_seed2
    trainings = {name: training.create_pipeline(name) for name in architectures + extra_members}
    pipelines: dict[str, Pipeline] = {"data_processing": processing}
    pipelines.update({name: processing + trainings[name] for name in architectures})
    pipelines["lr_finder"] = processing + sum(
        (training.create_lr_finder_pipeline(name) for name in LEARNED), Pipeline([])
    )
    pipelines["reporting"] = reporting.create_pipeline(architectures)
    # members trained in the same run, then averaged; `--tags ensemble` re-averages earlier members
    members = sum((trainings[name] for name in ENSEMBLE_CANDIDATES), Pipeline([]))
    pipelines["ensemble"] = processing + members + ensemble.create_pipeline()
    pipelines["__default__"] = (
        processing + sum((trainings[name] for name in architectures), Pipeline([])) + pipelines["reporting"]
    )
    return pipelines
