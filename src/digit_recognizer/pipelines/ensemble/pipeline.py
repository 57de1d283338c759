"""The members' probabilities → their mean → submission, score and leaderboard."""

from kedro.pipeline import Pipeline, node

from digit_recognizer.ml.registry import member_outputs
from digit_recognizer.pipelines.training.pipeline import submission_nodes

from .nodes import average_members, summarise_ensemble


def create_pipeline(candidates: list[str]) -> Pipeline:
    """Reads each candidate's persisted probabilities, so changing the ensemble never retrains a member.

    Every candidate namespace's outputs are inputs, by name (``cnn_seed1_summary`` reaches the
    node as the keyword argument of that name); ``params:ensemble`` chooses the members.
    """
    probabilities = [name for m in candidates for name in member_outputs(m)[:2]]
    summaries = [member_outputs(m)[2] for m in candidates]
    average = node(
        average_members,
        {"config": "params:ensemble", **{name: name for name in probabilities}},
        ["validation_metrics", "test_probabilities"],
        name="average_members",
    )
    summary = node(
        summarise_ensemble,
        {
            "metrics": "validation_metrics",
            "test_score": "test_score",
            "run": "run",
            "config": "params:ensemble",
            **{name: name for name in summaries},
        },
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
