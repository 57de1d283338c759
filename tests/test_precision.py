"""bf16 autocast where the device runs it fast; weights and model files stay float32."""

from __future__ import annotations

import torch

from digit_recognizer.ml.models import build_model
from digit_recognizer.ml.precision import resolve_precision
from digit_recognizer.ml.training import FitSettings, fit

CPU = torch.device("cpu")


def test_auto_reads_the_cpu_flags():
    assert resolve_precision("auto", CPU, {"avx2", "amx_bf16", "avx512_bf16"}) == (
        "bf16",
        "the CPU has amx_bf16 and avx512_bf16",
    )
    assert resolve_precision("auto", CPU, {"avx2"}) == ("fp32", "the CPU has neither amx_bf16 nor avx512_bf16")
    assert resolve_precision("bf16", CPU, set()) == ("bf16", "asked for")
    assert resolve_precision("fp32", CPU, {"amx_bf16"}) == ("fp32", "asked for")
    assert resolve_precision("auto", CPU, {"amx_bf16"}, allowed=False) == (
        "fp32",
        "bf16 lowered this architecture's validation accuracy",
    )


def test_a_bf16_training_keeps_float32_weights_and_learns(sample_files):
    frame = sample_files["train"].head(512)
    images = torch.tensor(frame.iloc[:, 1:].to_numpy() / 255, dtype=torch.float32).reshape(-1, 1, 28, 28)
    labels = torch.tensor(frame["label"].to_numpy())
    torch.manual_seed(0)
    model = build_model("conv")
    settings = FitSettings(epochs=3, lr=0.1, batch_size=64, precision="bf16")
    history = fit(model, (images, labels), (images, labels), settings, log=lambda _: None)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(b.dtype in (torch.float32, torch.int64) for b in model.buffers())  # BatchNorm statistics
    assert history[-1].train_loss < history[0].train_loss and history[-1].accuracy > 0.5
