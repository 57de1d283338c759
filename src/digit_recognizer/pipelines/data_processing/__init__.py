"""Ingestion with validation, stratified split, normalisation and tensor building."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
