from __future__ import annotations

import itertools
import math

import pytest
import torch

from digit_recognizer.ml.models import build_model
from digit_recognizer.ml.training import (
    EpochStats,
    FitSettings,
    TrainingDivergedError,
    batch_indices,
    class_probabilities,
    duration,
    evaluate,
    fit,
    format_epoch,
    lr_find,
    predict,
    random_affine,
)


@pytest.fixture(scope="module")
def tiny_set(sample_files):
    frame = sample_files["train"].head(512)
    images = torch.tensor(frame.iloc[:, 1:].to_numpy() / 255, dtype=torch.float32).reshape(-1, 1, 28, 28)
    labels = torch.tensor(frame["label"].to_numpy())
    return images, labels


def test_batch_indices_cover_every_row_once():
    batches = list(batch_indices(10, 4, torch.Generator().manual_seed(0)))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat(batches).tolist()) == list(range(10))
    assert torch.equal(torch.cat(list(batch_indices(5, 2))), torch.arange(5))


@pytest.mark.parametrize("architecture", ["linear", "mlp", "conv"])
def test_fit_lowers_the_loss_and_logs_one_line_per_epoch(tiny_set, architecture):
    torch.manual_seed(0)
    model = build_model(architecture)
    lines = []
    history = fit(model, tiny_set, tiny_set, FitSettings(epochs=3, lr=0.1, batch_size=64, seed=0), log=lines.append)
    assert len(history) == 3 and len(lines) == 4
    assert lines[0].split() == ["epoch", "train_loss", "valid_loss", "accuracy", "time", "left"]
    assert [line.split()[0] for line in lines[1:]] == ["1/3", "2/3", "3/3"]
    assert lines[3].split()[-1] == "0.0s"  # nothing left after the last epoch
    assert history[-1].train_loss < history[0].train_loss < math.log(10) + 0.5
    assert history[-1].accuracy > 0.5


def test_regression_head_trains_on_digit_values(tiny_set):
    torch.manual_seed(0)
    model = build_model("mlp", head="regression")
    history = fit(model, tiny_set, tiny_set, FitSettings(epochs=3, lr=0.01, batch_size=64), log=lambda _: None)
    assert history[-1].train_loss < history[0].train_loss
    predictions = predict(model, tiny_set[0])
    assert predictions.dtype == torch.int64 and predictions.min() >= 0 and predictions.max() <= 9


def test_same_seed_same_model(tiny_set):
    def train():
        torch.manual_seed(3)
        model = build_model("conv")
        fit(
            model,
            tiny_set,
            tiny_set,
            FitSettings(epochs=1, lr=0.1, batch_size=64, seed=3, augment={}),
            log=lambda _: None,
        )
        return model

    first, second = train(), train()
    assert all(
        torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True)
    )


def test_one_cycle_warms_up_then_anneals(tiny_set):
    rates = []
    model = build_model("linear")
    original = torch.optim.SGD.step

    def recording_step(self, *args, **kwargs):
        rates.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    torch.optim.SGD.step = recording_step
    try:
        fit(
            model,
            tiny_set,
            tiny_set,
            FitSettings(epochs=4, lr=0.5, batch_size=64, schedule="one_cycle"),
            log=lambda _: None,
        )
        one_cycle = list(rates)
        rates.clear()
        fit(
            model,
            tiny_set,
            tiny_set,
            FitSettings(epochs=2, lr=0.5, batch_size=64, schedule="constant"),
            log=lambda _: None,
        )
    finally:
        torch.optim.SGD.step = original
    peak = max(range(len(one_cycle)), key=one_cycle.__getitem__)
    assert one_cycle[0] < 0.05 and one_cycle[-1] < 1e-3
    assert one_cycle[peak] == pytest.approx(0.5, rel=0.05) and 0 < peak < len(one_cycle) - 1
    assert set(rates) == {0.5}


def test_unknown_schedule(tiny_set):
    with pytest.raises(ValueError, match="schedule must be one of"):
        fit(build_model("linear"), tiny_set, tiny_set, FitSettings(epochs=1, lr=0.1, schedule="cosine"))


def test_divergence_is_reported(tiny_set):
    model = build_model("linear", head="regression")
    with pytest.raises(TrainingDivergedError, match=r"training diverged in epoch \d+ .*lower the learning rate"):
        fit(
            model,
            tiny_set,
            tiny_set,
            FitSettings(epochs=5, lr=50.0, batch_size=64, schedule="constant"),
            log=lambda _: None,
        )


def test_lr_finder_sweeps_exponentially_and_stops_on_divergence(tiny_set):
    torch.manual_seed(0)
    result = lr_find(build_model("mlp"), tiny_set, FitSettings(batch_size=64), start_lr=1e-4, end_lr=1e4, num_steps=80)
    ratios = [b / a for a, b in itertools.pairwise(result.rates)]
    assert ratios == pytest.approx([ratios[0]] * len(ratios))
    assert ratios[0] == pytest.approx((1e4 / 1e-4) ** (1 / 79))
    assert len(result.rates) < 80  # the loss blew up before the sweep reached lr=1e4
    assert result.losses[-1] > 4 * min(result.losses)  # it stopped at the step where the loss blew up
    assert all(loss <= 4 * min(result.losses[: i + 1]) for i, loss in enumerate(result.losses[:-1]))
    assert 1e-4 <= result.suggestion <= 1.0
    minimum = result.losses.index(min(result.losses))
    assert result.suggestion == pytest.approx(result.rates[minimum] / 10)


def test_evaluate_and_predict_agree(tiny_set):
    model = build_model("centroid").fit(*tiny_set)
    loss, predictions = evaluate(model, *tiny_set, batch_size=100)
    assert torch.equal(predictions, predict(model, tiny_set[0], batch_size=7))
    assert (predictions == tiny_set[1]).float().mean() > 0.6 and loss > 0


def test_random_affine_keeps_shape_and_identity_when_disabled(tiny_set):
    images = tiny_set[0][:8]
    generator = torch.Generator().manual_seed(0)
    same = random_affine(images, generator, max_rotation=0, max_shift=0, max_scale=0)
    torch.testing.assert_close(same, images, atol=1e-5, rtol=0)
    moved = random_affine(images, generator)
    assert moved.shape == images.shape and not torch.allclose(moved, images)


def test_format_epoch_header_and_row():
    assert format_epoch().split() == ["epoch", "train_loss", "valid_loss", "accuracy", "time", "left"]
    row = EpochStats(epoch=2, train_loss=0.5, valid_loss=0.25, accuracy=0.9, time=1.25, lr=0.1)
    assert format_epoch(row, 30, 185.0).split() == ["3/30", "0.5000", "0.2500", "0.9000", "1.2s", "3m", "05s"]
    assert [duration(s) for s in (4.25, 65, 3725)] == ["4.2s", "1m 05s", "1h 02m"]
    skipped = EpochStats(epoch=0, train_loss=0.5, valid_loss=math.nan, accuracy=math.nan, time=1.25, lr=0.1)
    line = format_epoch(skipped, 2, 1.25)
    assert line.split() == ["1/2", "0.5000", "-", "-", "1.2s", "1.2s"] and len(line) == len(format_epoch())


def test_validate_every_skips_passes_but_always_validates_the_last_epoch(tiny_set):
    torch.manual_seed(0)
    settings = FitSettings(epochs=5, lr=0.1, batch_size=64, validate_every=2)
    history = fit(build_model("mlp"), tiny_set, tiny_set, settings, log=lambda _: None)
    validated = [h.epoch for h in history if not math.isnan(h.accuracy)]
    assert validated == [1, 3, 4]  # after epochs 2 and 4, and the last
    assert all(math.isnan(h.valid_loss) for h in history if h.epoch not in validated)
    with pytest.raises(ValueError, match="validate_every must be a positive number of epochs, got 0"):
        FitSettings(validate_every=0)


def test_bf16_inference_agrees_with_float32(tiny_set):
    torch.manual_seed(0)
    model = build_model("cnn")
    fit(model, tiny_set, None, FitSettings(epochs=2, lr=0.05, batch_size=64, precision="bf16"), log=lambda _: None)
    full = class_probabilities(model, tiny_set[0], test_time_shifts=True)
    half = class_probabilities(model, tiny_set[0], test_time_shifts=True, precision="bf16")
    assert full.dtype == half.dtype == torch.float32
    torch.testing.assert_close(half.sum(1), torch.ones(len(half)))
    assert (full - half).abs().max() < 0.05 and (full.argmax(1) == half.argmax(1)).float().mean() > 0.98
    one_view = class_probabilities(model, tiny_set[0], precision="bf16")
    assert torch.equal(predict(model, tiny_set[0], precision="bf16"), one_view.argmax(1))
