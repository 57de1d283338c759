"""Which floating-point precision a training step computes in: float32, or bfloat16 autocast where it is fast.

Under bf16 autocast the forward pass and the loss run in bfloat16 where that is safe (matrix
products, convolutions); the weights, the optimizer's state and BatchNorm's statistics stay
float32, and so do the model files.
"""

from __future__ import annotations

from pathlib import Path

import torch

BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")  # the instructions that make bf16 fast on a CPU


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    return next((set(line.split(":", 1)[1].split()) for line in text.splitlines() if line.startswith("flags")), set())


def resolve_precision(
    setting: str, device: torch.device, flags: set[str] | None = None, allowed: bool = True
) -> tuple[str, str]:
    """``(precision, why)``: ``fp32`` or ``bf16``.

    ``auto`` picks bf16 where the device runs it fast and the architecture ``allowed`` it (its
    validation accuracy held under bf16).
    """
    if setting != "auto":
        return setting, "asked for"
    if not allowed:
        return "fp32", "bf16 lowered this architecture's validation accuracy"
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return "bf16", f"{torch.cuda.get_device_name(device)} runs bf16"
        return "fp32", f"{torch.cuda.get_device_name(device)} has no fast bf16"
    if device.type == "cpu":
        found = sorted((cpu_flags() if flags is None else flags) & set(BF16_CPU_FLAGS))
        if found:
            return "bf16", f"the CPU has {' and '.join(found)}"
        return "fp32", f"the CPU has neither {' nor '.join(BF16_CPU_FLAGS)}"
    return "fp32", f"no bf16 autocast chosen for {device.type}"


def autocast(precision: str, device: torch.device) -> torch.autocast:
    """The autocast context of a training step: bf16 when ``precision`` says so, else a no-op."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
