"""The project's pipelines, registered by name (explicitly, so that each name imports alone)."""

from kedro.pipeline import Pipeline

from digit_recognizer.pipelines import data_processing


def register_pipelines() -> dict[str, Pipeline]:
    processing = data_processing.create_pipeline()
    return {
        "data_processing": processing,
        "__default__": processing,
    }
