"""Reference-free CLIPScore and RefCLIPScore (Hessel et al., 2021) with any registered scorer.

    CLIP-S(c, v)       = w * max(cos(E_c, E_v), 0),                 w = 2.5
    RefCLIP-S(c, R, v) = H-Mean(CLIP-S(c, v), max(max_r cos(E_c, E_r), 0))

Captions are prefixed with "A photo depicts " as in the paper. The scorer's ``similarity`` must
be a cosine (true for the open_clip and concept scorers); with SigLIP or CLIP ViT-B/32 weights
this is the published metric, with other scorers it is the same formula on their embeddings.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from evaluation.bootstrap import Estimate, bootstrap_mean
from mils.errors import InputError
from mils.protocols import Sample, Scorer
from mils.scorers import unit_rows

W = 2.5
PREFIX = "A photo depicts "


def clip_scores(
    scorer: Scorer,
    samples: Sequence[Sample],
    captions: Sequence[str],
    references: Sequence[Sequence[str]] | None = None,
    w: float = W,
    prefix: str = PREFIX,
    resamples: int = 1000,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict[str, Estimate]]:
    """Per-sample CLIPScore (and RefCLIPScore when references are given) and corpus means with CIs."""
    if len(samples) != len(captions):
        raise InputError(f"{len(samples)} samples but {len(captions)} captions")
    if references is not None and len(references) != len(captions):
        raise InputError(f"{len(captions)} captions but {len(references)} reference lists")
    sample_emb = unit_rows(np.asarray(scorer.embed_samples(samples), np.float32))
    cap_emb = unit_rows(np.asarray(scorer.embed_texts([prefix + c for c in captions]), np.float32))
    clip_s = w * np.clip((sample_emb * cap_emb).sum(-1), 0, None)
    table = pd.DataFrame({"CLIPScore": clip_s}, index=pd.Index([s.id for s in samples], name="id"))
    if references is not None:
        flat = [prefix + r for refs in references for r in refs]
        if any(len(refs) == 0 for refs in references):
            raise InputError("RefCLIPScore needs at least one reference per sample")
        ref_emb = unit_rows(np.asarray(scorer.embed_texts(flat), np.float32))
        ref_sim, start = [], 0
        for i, refs in enumerate(references):
            ref_sim.append(max(float((ref_emb[start : start + len(refs)] @ cap_emb[i]).max()), 0.0))
            start += len(refs)
        ref_sim = np.array(ref_sim)
        with np.errstate(divide="ignore", invalid="ignore"):
            hmean = np.where(clip_s + ref_sim > 0, 2 * clip_s * ref_sim / (clip_s + ref_sim), 0.0)
        table["RefCLIPScore"] = hmean
    corpus = {name: bootstrap_mean(table[name].to_numpy(), resamples, seed) for name in table.columns}
    return table, corpus
