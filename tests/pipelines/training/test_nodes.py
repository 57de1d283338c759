from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure
from torch.utils.data import TensorDataset

from digit_recognizer.config import TrainingConfig
from digit_recognizer.ml.metrics import PROBABILITY_COLUMNS, probability_table
from digit_recognizer.ml.models import Preprocessing, build_model
from digit_recognizer.ml.training import SHIFTS, class_probabilities, shifted
from digit_recognizer.pipelines.training.nodes import (
    evaluate_model,
    make_submission,
    plot_misclassified,
    refit_on_all_rows,
    score_submission,
    summarise_run,
    train_model,
)

STATS = {"scale": 255.0, "mean": 0.1, "std": 0.3, "standardise": True}


@pytest.fixture
def tensors(raw_frames):
    frame = raw_frames["train"]
    images = torch.tensor(frame.iloc[:, 1:].to_numpy() / 255, dtype=torch.float32).reshape(-1, 1, 28, 28)
    labels = torch.tensor(frame["label"].to_numpy())
    return TensorDataset(images[:200], labels[:200]), TensorDataset(images[200:], labels[200:])


def _one_hot(labels: np.ndarray) -> pd.DataFrame:
    return probability_table(np.eye(10)[labels])


def test_make_submission_takes_the_most_probable_digit(raw_frames):
    predictions = np.arange(100) % 10
    submission = make_submission(_one_hot(predictions), raw_frames["sample_submission"])
    assert list(submission.columns) == ["ImageId", "Label"]
    assert submission["ImageId"].tolist() == list(range(1, 101))
    assert submission["Label"].tolist() == predictions.tolist()


def test_make_submission_rejects_wrong_length(raw_frames):
    with pytest.raises(ValueError, match="99 predictions for 100 rows of sample_submission.csv"):
        make_submission(_one_hot(np.zeros(99, dtype=int)), raw_frames["sample_submission"])


def test_score_submission_like_the_leaderboard(raw_frames):
    solution = raw_frames["solution"]
    submission = solution.copy()
    submission.loc[:9, "Label"] = (submission.loc[:9, "Label"] + 1) % 10
    assert score_submission(submission, solution) == {"scored": True, "accuracy": 0.9, "rows": 100}
    assert score_submission(submission, None) == {"scored": False, "accuracy": None, "rows": 100}
    with pytest.raises(ValueError, match="does not cover"):
        score_submission(submission, solution.head(50))


def test_evaluate_model_reports_confusion_and_per_class_accuracy(tensors):
    train_set, validation_set = tensors
    model = build_model("centroid").fit(*train_set.tensors)
    metrics, probabilities = evaluate_model(model, validation_set, TrainingConfig(architecture="centroid"))
    assert list(probabilities.columns) == ["label", *PROBABILITY_COLUMNS]
    assert np.allclose(probabilities[PROBABILITY_COLUMNS].sum(axis=1), 1, atol=1e-5)
    confusion = np.array(metrics["confusion_matrix"])
    labels = validation_set.tensors[1].numpy()
    assert confusion.sum() == len(labels) == metrics["validation_rows"]
    assert (confusion.sum(axis=1) == np.bincount(labels, minlength=10)).all()
    assert metrics["accuracy"] == pytest.approx(np.trace(confusion) / len(labels))
    digit = int(labels[0])
    assert metrics["per_class_accuracy"][str(digit)] == pytest.approx(
        confusion[digit, digit] / confusion[digit].sum(), abs=1e-6
    )
    assert metrics["parameters"] == 7840 and metrics["architecture"] == "centroid"


def test_fit_centroid_and_summary(tensors):
    train_set, validation_set = tensors
    config = TrainingConfig(architecture="centroid", model={"distance": "euclidean"})
    model, history = train_model(train_set, validation_set, STATS, config)
    assert model.config.options == {"distance": "euclidean"}
    assert model.config.preprocessing == Preprocessing(mean=0.1, std=0.3)  # carried with the model
    assert history["epochs"][0]["accuracy"] > 0.5 and history["rows"] == 200
    metrics, _ = evaluate_model(model, validation_set, config)
    submitted, training = refit_on_all_rows(model, train_set, validation_set, STATS, config)
    assert submitted is model and training["refit_full"] is False
    row = summarise_run(metrics, history, training, {"scored": True, "accuracy": 0.8, "rows": 100}, {"run_id": "R1"})
    assert row["architecture"] == "centroid" and row["test_score"] == 0.8 and row["epochs"] == 1
    assert row["validation_accuracy"] == round(metrics["accuracy"], 4) and row["run"] == "R1"
    assert row["submitted"] == "trained on 200 split rows"


def test_refit_trains_a_fresh_model_on_every_labelled_row(tensors):
    train_set, validation_set = tensors
    config = TrainingConfig(architecture="centroid", refit_full=True)
    split_model, _ = train_model(train_set, validation_set, STATS, config)
    model, training = refit_on_all_rows(split_model, train_set, validation_set, STATS, config)
    assert model is not split_model and training["refit_full"] is True and training["rows"] == 300
    images = torch.cat([train_set.tensors[0], validation_set.tensors[0]])
    labels = torch.cat([train_set.tensors[1], validation_set.tensors[1]])
    expected = build_model("centroid").fit(images, labels)
    assert torch.allclose(model.centroids, expected.centroids)  # the mean of all 300 rows
    assert model.config.preprocessing == split_model.config.preprocessing


def test_refit_of_a_learned_model_uses_the_same_settings(tensors):
    train_set, validation_set = tensors
    config = TrainingConfig(architecture="linear", epochs=2, refit_full=True, progress_bar=False)
    split_model, history = train_model(train_set, validation_set, STATS, config)
    model, training = refit_on_all_rows(split_model, train_set, validation_set, STATS, config)
    assert training["rows"] == 300 and len(training["epochs"]) == len(history["epochs"]) == 2
    assert np.isnan(training["epochs"][0]["accuracy"])  # no validation rows left to score on
    assert not torch.equal(model[1].weight, split_model[1].weight)


def test_test_time_shifts_average_five_views(tensors):
    _, validation_set = tensors
    torch.manual_seed(0)
    model = build_model("mlp")
    images = validation_set.tensors[0]
    plain = class_probabilities(model, images, test_time_shifts=False)
    views = [torch.softmax(model.eval()(shifted(images, dy, dx)), 1) for dy, dx in SHIFTS]
    averaged = class_probabilities(model, images, test_time_shifts=True)
    assert torch.allclose(plain, views[0], atol=1e-6)
    assert torch.allclose(averaged, torch.stack(views).mean(0), atol=1e-6)
    assert torch.equal(shifted(images, 1, 0)[..., 1:, :], images[..., :-1, :])  # one pixel down
    assert (shifted(images, 1, 0)[..., 0, :] == 0).all()


def test_plot_misclassified_shows_wrong_digits(tensors):
    train_set, validation_set = tensors
    model = build_model("centroid").fit(*train_set.tensors)
    figure = plot_misclassified(model, validation_set, count=6)
    assert isinstance(figure, Figure)
    titles = [text.get_text() for ax in figure.axes for text in ax.texts]
    assert len(titles) == 6
    for title in titles:
        true, predicted = title.replace("true ", "").split(" / pred ")
        assert true != predicted


@pytest.mark.parametrize("use_lr_finder", [True, False])
def test_train_model_takes_the_finders_rate_only_when_asked(tensors, use_lr_finder):
    from digit_recognizer.pipelines.training.nodes import find_learning_rate, train_model

    train_set, validation_set = tensors
    config = TrainingConfig(
        architecture="linear", epochs=1, lr=0.05, use_lr_finder=use_lr_finder, progress_bar=False, schedule="constant"
    )
    model, history = train_model(train_set, validation_set, STATS, config)
    expected = find_learning_rate(train_set, config)["suggestion"] if use_lr_finder else 0.05
    assert history["lr"] == pytest.approx(expected) and history["epochs"][0]["lr"] == pytest.approx(expected)
    assert model.config.architecture == "linear" and len(history["epochs"]) == 1
    assert model.config.preprocessing == Preprocessing(mean=0.1, std=0.3)


def test_predict_test_applies_the_models_own_preprocessing(tensors, raw_frames):
    from digit_recognizer.pipelines.training.nodes import predict_test

    train_set, _ = tensors
    test = raw_frames["test"].astype(np.uint8)
    model = build_model("centroid").fit(*train_set.tensors)
    model.config = model.config.trained_with(Preprocessing())
    config = TrainingConfig(architecture="centroid")
    plain = predict_test(model, test, config)[PROBABILITY_COLUMNS].to_numpy().argmax(1)
    expected = model(torch.tensor(test.to_numpy() / 255, dtype=torch.float32).reshape(-1, 1, 28, 28)).argmax(1)
    assert (plain == expected.numpy()).all()
    model.config = model.config.trained_with(
        Preprocessing(mean=0.5, std=0.01)
    )  # a model trained on other inputs sees them so
    assert (predict_test(model, test, config)[PROBABILITY_COLUMNS].to_numpy().argmax(1) != plain).any()


def test_find_learning_rate_suggests_a_rate_inside_the_sweep(tensors):
    from digit_recognizer.pipelines.training.nodes import find_learning_rate

    config = TrainingConfig(architecture="mlp", lr_finder={"num_steps": 30}, batch_size=32)
    result = find_learning_rate(tensors[0], config)
    assert result["rates"][0] == pytest.approx(1e-5) and len(result["rates"]) == len(result["losses"]) <= 30
    assert 0 < result["suggestion"] <= result["rates"][-1]
