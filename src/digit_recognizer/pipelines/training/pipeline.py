"""One training template (train → validate → predict → submit), reused per architecture."""

from kedro.pipeline import Pipeline, node

from .nodes import (
    evaluate_model,
    find_learning_rate,
    fit_centroid,
    make_submission,
    plot_confusion_matrix,
    plot_lr_finder,
    plot_misclassified,
    plot_training_curves,
    predict_test,
    score_submission,
    summarise_run,
    train_model,
)

SHARED_INPUTS = {"train_set", "validation_set", "test_set", "raw_sample_submission", "raw_solution"}


def _learned_training() -> list:
    return [
        node(find_learning_rate, ["train_set", "params:hyperparameters"], "lr_finder", name="find_learning_rate"),
        node(plot_lr_finder, ["lr_finder", "params:hyperparameters"], "lr_finder_plot", name="plot_lr_finder"),
        node(
            train_model,
            ["train_set", "validation_set", "lr_finder", "params:hyperparameters"],
            ["model", "training_history"],
            name="train_model",
        ),
        node(plot_training_curves, "training_history", "training_curves", name="plot_training_curves"),
    ]


def _centroid_fit() -> list:
    return [
        node(
            fit_centroid,
            ["train_set", "validation_set", "params:hyperparameters"],
            ["model", "training_history"],
            name="fit_centroids",
        ),
    ]


def _validation_and_submission() -> list:
    return [
        node(evaluate_model, ["model", "validation_set"], "validation_metrics", name="evaluate_model"),
        node(plot_confusion_matrix, "validation_metrics", "confusion_matrix", name="plot_confusion_matrix"),
        node(plot_misclassified, ["model", "validation_set"], "misclassified_digits", name="plot_misclassified"),
        # tagged "predict": `--tags data_processing,predict --load-versions conv.model:<version>`
        # remakes a past model's submission without training
        node(predict_test, ["model", "test_set"], "test_predictions", name="predict_test", tags="predict"),
        node(
            make_submission,
            ["test_predictions", "raw_sample_submission"],
            "submission",
            name="make_submission",
            tags="predict",
        ),
        node(score_submission, ["submission", "raw_solution"], "test_score", name="score_submission", tags="predict"),
        node(summarise_run, ["validation_metrics", "training_history", "test_score"], "summary", name="summarise_run"),
    ]


def create_pipeline(architecture: str) -> Pipeline:
    """The template under the ``architecture`` namespace, fed by the shared tensors."""
    fitting = _centroid_fit() if architecture == "centroid" else _learned_training()
    template = Pipeline([*fitting, *_validation_and_submission()])
    return Pipeline(
        template,
        namespace=architecture,
        inputs=SHARED_INPUTS & set(template.inputs()),
        parameters={"params:hyperparameters": f"params:{architecture}"},
        outputs={"summary": f"{architecture}_summary"},  # what reporting reads
        tags=["training", architecture],
    )
