"""The cost ledger of a run: tokens, model seconds, candidates scored, memory, projections.

MILS's known weakness is cost (orders of magnitude more compute than a single-pass captioner),
so every run records what it spent: per sample and step in the results (``SampleResult.cost``),
summed here per step and per run.
"""

from __future__ import annotations

import resource
import sys
from typing import Sequence

import pandas as pd

from mils.engine.records import SampleResult

COLUMNS = ("prompt_tokens", "generated_tokens", "llm_seconds", "candidates_scored", "scorer_seconds", "renders",
           "cached_prompt_tokens", "cached_generated_tokens", "reasoning_tokens")


def shares(total: float, weights: Sequence[float]) -> list[float]:
    """``total`` split in proportion to ``weights`` (equally when they are all zero)."""
    weight = float(sum(weights))
    return [total * w / weight for w in weights] if weight > 0 else [total / max(len(weights), 1)] * len(weights)


def step_costs(results: Sequence[SampleResult]) -> pd.DataFrame:
    """Totals over samples per step (rows: step 0..N); token columns are NaN when not counted."""
    rows = [{"step": c.step, **{k: getattr(c, k) for k in COLUMNS}} for r in results for c in r.cost]
    if not rows:
        return pd.DataFrame(columns=["step", *COLUMNS], dtype=float).set_index("step")  # results without a ledger
    table = pd.DataFrame(rows).astype({k: float for k in COLUMNS})
    return table.groupby("step").sum(min_count=1)


def peak_memory_mb() -> dict[str, float]:
    """Peak resident memory of this process (the flow's, which runs the shards under the threads
    runner), and the GPU's peak allocation when torch uses one here."""
    out = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        out["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def run_cost(results: Sequence[SampleResult], wall_seconds: float, dataset_size: int | None = None,
             worker_peak_mb: float | None = None, price: dict[str, float] | None = None) -> dict[str, float]:
    """Run totals, rates and the projected time for the whole dataset (``dataset_size`` samples).
    Rates come from the recorded model seconds (LLM + scorer), so a resumed run reports the cost of
    its samples, not of the resume; ``wall_seconds`` is this invocation's wall clock.
    ``worker_peak_mb``: the largest peak RSS of the Dask worker processes that ran shards.
    ``price``: dollars per million ``prompt``/``generated`` tokens: ``dollars`` for the tokens paid
    (not those the response cache served) and ``dollars_per_sample``."""
    totals = step_costs(results).sum(min_count=1)
    n = len(results)
    out = {k: float(totals.get(k, float("nan"))) for k in COLUMNS}
    model_seconds = out["llm_seconds"] + out["scorer_seconds"]
    out["samples"] = float(n)
    out["wall_seconds"] = float(wall_seconds)
    out["seconds_per_sample"] = model_seconds / n if n else float("nan")
    out["samples_per_hour"] = 3600 / out["seconds_per_sample"] if n and model_seconds > 0 else float("nan")
    llm = out["llm_seconds"]
    out["generated_tokens_per_second"] = out["generated_tokens"] / llm if llm and llm > 0 else float("nan")
    if dataset_size:
        out["projected_dataset_hours"] = out["seconds_per_sample"] * dataset_size / 3600
    if worker_peak_mb:
        out["worker_peak_rss_mb"] = float(worker_peak_mb)
    if price:
        paid_prompt = (out["prompt_tokens"] or 0.0) - (out["cached_prompt_tokens"] or 0.0)
        paid_generated = (out["generated_tokens"] or 0.0) - (out["cached_generated_tokens"] or 0.0)
        out["dollars"] = (paid_prompt * price["prompt"] + paid_generated * price["generated"]) / 1e6
        out["dollars_per_sample"] = out["dollars"] / n if n else float("nan")
    return {**out, **peak_memory_mb()}


def cost_line(cost: dict[str, float]) -> str:
    tokens = cost.get("generated_tokens", float("nan"))
    text = (f"cost: {cost['samples']:.0f} samples, {cost['seconds_per_sample']:.1f} model-seconds/sample "
            f"({cost['samples_per_hour']:.0f}/h), {cost['wall_seconds']:.0f}s wall; LLM {cost['llm_seconds']:.1f}s, {tokens:.0f} tokens generated "
            f"({cost['generated_tokens_per_second']:.1f}/s), {cost['prompt_tokens']:.0f} prompt tokens; scorer "
            f"{cost['scorer_seconds']:.1f}s for {cost['candidates_scored']:.0f} candidates; peak RSS "
            f"{cost['peak_rss_mb']:.0f} MB (this process)")
    if "worker_peak_rss_mb" in cost:
        text += f", {cost['worker_peak_rss_mb']:.0f} MB (the largest Dask worker's)"
    if cost.get("cached_generated_tokens", 0) > 0:
        text += f"; {cost['cached_generated_tokens']:.0f} of the generated tokens from the response cache (not paid)"
    if cost.get("reasoning_tokens", 0) > 0:
        text += f"; {cost['reasoning_tokens']:.0f} of them reasoning"
    if "dollars" in cost:
        text += f"; ${cost['dollars']:.4f} (${cost['dollars_per_sample']:.5f}/sample)"
    if cost.get("renders", 0) > 0:
        text += f"; {cost['renders']:.0f} images rendered or edited"
    if "projected_dataset_hours" in cost:
        text += f"; whole dataset: {cost['projected_dataset_hours']:.2f} h at this rate"
    return text
