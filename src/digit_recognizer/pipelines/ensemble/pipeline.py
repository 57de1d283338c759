"""The members' probabilities → their mean → submission, score and leaderboard."""

from kedro.pipeline import Pipeline, node

from digit_recognizer.config import ENSEMBLE_CANDIDATES
from digit_recognizer.pipelines.training.pipeline import submission_nodes

from .nodes import average_members, summarise_ensemble


def create_pipeline(**kwargs) -> Pipeline:
    """Reads each member's persisted probabilities, so changing the ensemble never retrains a member."""
    member_outputs = [
        f"{member}_{output}"
        for member in ENSEMBLE_CANDIDATES
        for output in ("validation_probabilities", "test_probabilities", "summary")
    ]
    average = node(
        average_members,
        ["params:ensemble", *member_outputs],
        ["validation_metrics", "test_probabilities", "members"],
        name="average_members",
    )
    summary = node(
        summarise_ensemble,
        ["validation_metrics", "test_score", "members", "run"],
        ["summary", "leaderboard"],
        name="summarise_ensemble",
    )
    return Pipeline(
        [*submission_nodes(average), summary],
        namespace="ensemble",
        inputs={"raw_sample_submission", "raw_solution", "run", *member_outputs},
        parameters={"params:ensemble"},
        outputs={"summary": "ensemble_summary", "test_probabilities": "ensemble_test_probabilities"},
        tags="ensemble",
    )
