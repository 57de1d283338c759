"""The per-architecture training template: train, validate, predict, submit."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
