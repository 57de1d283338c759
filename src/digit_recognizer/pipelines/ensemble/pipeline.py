"""The members' probabilities → their mean → submission, score and leaderboard."""

from kedro.pipeline import Pipeline, node

from digit_recognizer.config import ENSEMBLE_CANDIDATES
from digit_recognizer.pipelines.training.pipeline import submission_nodes

from .nodes import average_members, summarise_ensemble


def create_pipeline(**kwargs) -> Pipeline:
    """Reads each member's persisted probabilities, so changing the ensemble never retrains a member."""
    probabilities = [f"{m}_{split}_probabilities" for m in ENSEMBLE_CANDIDATES for split in ("validation", "test")]
    summaries = [f"{m}_summary" for m in ENSEMBLE_CANDIDATES]
    average = node(
        average_members,
        ["params:ensemble", *probabilities],
        ["validation_metrics", "test_probabilities"],
        name="average_members",
    )
    summary = node(
        summarise_ensemble,
        ["validation_metrics", "test_score", "run", "params:ensemble", *summaries],
        ["summary", "leaderboard"],
        name="summarise_ensemble",
    )
    return Pipeline(
        [*submission_nodes(average), summary],
        namespace="ensemble",
        inputs={"raw_sample_submission", "raw_solution", "run", *probabilities, *summaries},
        parameters={"params:ensemble"},
        outputs={"summary": "ensemble_summary", "test_probabilities": "ensemble_test_probabilities"},
        tags="ensemble",
    )
