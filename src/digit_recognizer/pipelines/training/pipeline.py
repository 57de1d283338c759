"""One training template (train → validate → predict → submit), reused per architecture."""

from typing import Any

from kedro.pipeline import Pipeline, node

from digit_recognizer.ml.models import ARCHITECTURES

from .nodes import (
    evaluate_model,
    find_learning_rate,
    make_submission,
    plot_confusion_matrix,
    plot_lr_finder,
    plot_misclassified,
    plot_training_curves,
    predict_test,
    refit_on_all_rows,
    score_submission,
    summarise_run,
    train_model,
)

SHARED_INPUTS = {
    "train_set",
    "validation_set",
    "normalisation_stats",
    "validated_test",
    "raw_sample_submission",
    "raw_solution",
    "run",
    "cpu_share",  # among how many nodes at once `threads: auto` divides the CPUs (the run's hooks fill it)
}


def _fitting(learns: bool) -> list:
    train = node(
        train_model,
        ["train_set", "validation_set", "normalisation_stats", "params:hyperparameters", "cpu_share"],
        ["split_model", "training_history"],
        name="train_model" if learns else "fit_model",
    )
    refit = node(
        refit_on_all_rows,
        ["split_model", "train_set", "validation_set", "normalisation_stats", "params:hyperparameters", "cpu_share"],
        ["model", "submission_training"],
        name="refit_on_all_rows",
    )
    if not learns:
        return [train, refit]
    curves = node(plot_training_curves, "training_history", "training_curves_plot", name="plot_training_curves")
    return [train, refit, curves]


def _validation_and_submission() -> list:
    return [
        node(
            evaluate_model,
            ["split_model", "validation_set", "params:hyperparameters", "cpu_share"],
            ["validation_metrics", "validation_probabilities"],
            name="evaluate_model",
        ),
        node(plot_confusion_matrix, "validation_metrics", "confusion_matrix_plot", name="plot_confusion_matrix"),
        node(
            plot_misclassified,
            ["split_model", "validation_set"],
            "misclassified_digits_plot",
            name="plot_misclassified",
        ),
        # tagged "predict": `--tags data_processing,predict --load-versions conv.model:<version>`
        # remakes a past model's submission without training
        *submission_nodes(
            node(
                predict_test,
                ["model", "validated_test", "params:hyperparameters", "cpu_share"],
                "test_probabilities",
                name="predict_test",
                tags="predict",
            )
        ),
        node(
            summarise_run,
            ["validation_metrics", "training_history", "submission_training", "test_score", "run"],
            "summary",
            name="summarise_run",
        ),
    ]


def submission_nodes(predict: Any) -> list:
    """Probabilities → Kaggle submission → score against solution.csv (shared with the ensemble)."""
    return [
        predict,
        node(
            make_submission,
            ["test_probabilities", "raw_sample_submission"],
            "submission",
            name="make_submission",
            tags="predict",
        ),
        node(score_submission, ["submission", "raw_solution"], "test_score", name="score_submission", tags="predict"),
    ]


def _in_namespace(template: Pipeline, namespace: str, tags: list[str], **kwargs) -> Pipeline:
    return Pipeline(
        template,
        namespace=namespace,
        inputs=SHARED_INPUTS & set(template.inputs()),
        parameters={"params:hyperparameters": f"params:{namespace}"},
        tags=[*tags, namespace],
        **kwargs,
    )


def create_pipeline(namespace: str, architecture: str | None = None) -> Pipeline:
    """The template under ``namespace`` (parameter block ``namespace``), fed by the shared tensors.

    ``architecture`` (the namespace itself unless given) says which nodes the template has: a
    model that does not learn has no training curves.
    """
    learns = ARCHITECTURES[architecture or namespace].learns
    template = Pipeline([*_fitting(learns), *_validation_and_submission()])
    # what other pipelines read (reporting, the ensemble) leaves the namespace under names of its own
    shared = {"summary", "validation_probabilities", "test_probabilities"}
    return _in_namespace(template, namespace, ["training"], outputs={name: f"{namespace}_{name}" for name in shared})


def _lr_finder() -> list:
    return [
        node(
            find_learning_rate,
            ["train_set", "params:hyperparameters", "cpu_share"],
            "lr_finder",
            name="find_learning_rate",
        ),
        node(plot_lr_finder, ["lr_finder", "params:hyperparameters"], "lr_finder_plot", name="plot_lr_finder"),
    ]


def create_lr_finder_pipeline(architecture: str) -> Pipeline:
    """The learning-rate finder's sweep and plot for one architecture that learns (run only when asked for)."""
    return _in_namespace(Pipeline(_lr_finder()), architecture, ["lr_finder"])


def threaded_nodes() -> frozenset[str]:
    """The template's nodes that take ``cpu_share`` (they train or predict with torch), by name within a namespace."""
    template = [*_fitting(True), *_fitting(False), *_validation_and_submission(), *_lr_finder()]
    return frozenset(n.name for n in template if "cpu_share" in n.inputs)
