"""BERTScore (Zhang et al., 2020) through the optional ``bert-score`` package.

Users pick the model (``roberta-large`` is the package's English default; any local directory
works). It needs the model's weights on disk or a reachable hub, so it is off unless asked for.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd

from evaluation.bootstrap import Estimate, bootstrap_mean
from mils.errors import InputError, require


def bert_scores(
    predictions: Mapping[str, str],
    references: Mapping[str, Sequence[str]],
    model: str = "roberta-large",
    num_layers: int | None = None,
    batch_size: int = 32,
    device: str | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict[str, Estimate]]:
    """Per-sample BERTScore P/R/F1 (best over references) and corpus means with 95% CIs."""
    BERTScorer = require("bert_score", "BERTScore", "pip install bert-score").BERTScorer  # noqa: N806
    ids = sorted(predictions)
    missing = [i for i in ids if not references.get(i)]
    if missing:
        raise InputError(f"{len(missing)} predictions have no references, e.g. {missing[:5]}")
    scorer = BERTScorer(model_type=model, num_layers=num_layers, batch_size=batch_size, device=device, lang="en")
    precision, recall, f1 = scorer.score([predictions[i] for i in ids], [list(references[i]) for i in ids])
    table = pd.DataFrame(
        {"BERTScore-P": precision.numpy(), "BERTScore-R": recall.numpy(), "BERTScore-F1": f1.numpy()},
        index=pd.Index(ids, name="id"),
    )
    return table, {name: bootstrap_mean(table[name].to_numpy(), resamples, seed) for name in table.columns}
