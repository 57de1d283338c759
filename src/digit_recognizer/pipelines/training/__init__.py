"""The per-architecture training template: train, validate, predict, submit."""

from .pipeline import create_lr_finder_pipeline, create_pipeline

__all__ = ["create_lr_finder_pipeline", "create_pipeline"]
