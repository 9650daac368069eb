"""Datasets and metrics: pure library (no Prefect, no MLflow)."""

from evaluation.bootstrap import Estimate, bootstrap_mean
from evaluation.caption_metrics import (
    ALL_METRICS,
    MetricReport,
    caption_metrics,
    format_table,
)
from evaluation.chair import chair, mentioned_objects
from evaluation.clipscore import clip_scores
from evaluation.datasets import Dataset, EvalSample

__all__ = [
    "ALL_METRICS", "Dataset", "Estimate", "EvalSample", "MetricReport", "bootstrap_mean", "caption_metrics",
    "chair", "clip_scores", "format_table", "mentioned_objects",
]
