"""The ensemble: the mean class probabilities of several trained members."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
