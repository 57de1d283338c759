"""The project's pipelines, registered by name.

The registry is explicit rather than ``find_pipelines()``: that way ``kedro run --pipeline conv``
finds ``conv`` although it is composed here from the shared training template. Every
registered architecture (``digit_recognizer.ml.registry``) gets its pipeline.
"""

from kedro.pipeline import Pipeline

from digit_recognizer.ml.models import ARCHITECTURES
from digit_recognizer.ml.registry import ensemble_candidates
from digit_recognizer.pipelines import data_processing, ensemble, reporting, training


def register_pipelines() -> dict[str, Pipeline]:
    processing = data_processing.create_pipeline()
    namespaces = {name: name for name in ARCHITECTURES} | ensemble_candidates()  # namespace -> architecture
    trainings = {namespace: training.create_pipeline(namespace, arch) for namespace, arch in namespaces.items()}
    learned = [name for name, entry in ARCHITECTURES.items() if entry.learns]
    pipelines: dict[str, Pipeline] = {"data_processing": processing}
    pipelines.update({name: processing + trainings[name] for name in ARCHITECTURES})
    pipelines["lr_finder"] = processing + sum((training.create_lr_finder_pipeline(n) for n in learned), Pipeline([]))
    pipelines["reporting"] = reporting.create_pipeline(list(ARCHITECTURES))
    # members trained in the same run, then averaged; `--tags ensemble` re-averages earlier members
    members = list(ensemble_candidates())
    pipelines["ensemble"] = (
        processing + sum((trainings[m] for m in members), Pipeline([])) + ensemble.create_pipeline(members)
    )
    pipelines["__default__"] = (
        processing + sum((trainings[name] for name in ARCHITECTURES), Pipeline([])) + pipelines["reporting"]
    )
    return pipelines
