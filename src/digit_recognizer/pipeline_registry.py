"""The project's pipelines, registered by name.

The registry is explicit rather than ``find_pipelines()``: that way ``kedro run --pipeline conv``
finds ``conv`` although it is composed here from the shared training template.
"""

from kedro.pipeline import Pipeline

from digit_recognizer.models import ARCHITECTURES
from digit_recognizer.pipelines import data_processing, reporting, training

LEARNED = [name for name in ARCHITECTURES if name != "centroid"]


def register_pipelines() -> dict[str, Pipeline]:
    processing = data_processing.create_pipeline()
    architectures = list(ARCHITECTURES)
    trainings = {name: training.create_pipeline(name) for name in architectures}
    pipelines: dict[str, Pipeline] = {"data_processing": processing}
    pipelines.update({name: processing + pipeline for name, pipeline in trainings.items()})
    pipelines["lr_finder"] = processing + sum(
        (training.create_lr_finder_pipeline(name) for name in LEARNED), Pipeline([])
    )
    pipelines["reporting"] = reporting.create_pipeline(architectures)
    pipelines["__default__"] = processing + sum(trainings.values(), Pipeline([])) + pipelines["reporting"]
    return pipelines
