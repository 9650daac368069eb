"""`mils baseline`: a vision-language captioner over a run config's dataset, written as a MILS run
with one step (step 0 = the VLM's caption), so metrics, `mils compare`, judging batches, the viewer
and the cost ledger treat it like any run. The config's scorer scores each caption, which makes
"VLM vs MILS" comparable on MILS's own objective too.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from evaluation.datasets import config_dataset
from evaluation.run_record import build_record, write_record
from mils.components import build_scorer, plan_scorer
from mils.config import RunConfig
from mils.engine import SampleResult, StepCost, StepRecord, StepTrace, shares
from mils.files import content_hash, write_atomic
from mils.media import load_image
from mils.protocols import usage_of
from mils.registry import create
from mils.run import check_media
from mils.storage import ResultStore, RunFolder, write_media_root


def baseline_key(config: RunConfig, captioner: str, options: dict[str, Any]) -> str:
    """What a baseline run's results depend on: the captioner, its options, the scorer, the dataset."""
    return content_hash(json.dumps([captioner, options, config.scorer.model_dump(), config.dataset.model_dump()],
                                   sort_keys=True, default=str).encode(), 12)


def baseline_dir(config: RunConfig, captioner: str, options: dict[str, Any]) -> Path:
    return Path(config.output_dir) / f"baseline-{captioner}-{baseline_key(config, captioner, options)}"


def _result(sample, caption: str, score: float, usage, llm_seconds: float, scorer_seconds: float) -> SampleResult:
    cost = StepCost(0, usage.prompt if usage else None, usage.generated if usage else None, llm_seconds, 1,
                    scorer_seconds)
    return SampleResult(sample.id, [StepRecord(0, caption, score, score, 1, not caption)], [(caption, score)],
                        raw_replies=[], media=str(Path(sample.media).absolute()), cost=[cost],
                        trace=[StepTrace([(caption, score)])])


def run_baseline(config: RunConfig, captioner: str, options: dict[str, Any], batch_size: int = 8,
                 model=None, data=None) -> dict[str, Any]:
    """Caption every sample not yet done (resumable, like a MILS run); returns the folder and counts.
    ``data``: the config's dataset when the caller has it loaded already."""
    import mils.components.vlm_captioners  # noqa: F401  (registers the captioners)

    folder, started = baseline_dir(config, captioner, options), time.perf_counter()
    store = ResultStore(folder)
    write_atomic(RunFolder(folder).config, config.model_dump_json(indent=2))
    write_atomic(RunFolder(folder).captioner, json.dumps({"captioner": captioner, "options": options}, indent=2))
    data = data if data is not None else config_dataset(config.dataset)
    write_media_root(folder, [s.as_sample() for s in data.samples])
    good, failed = check_media([s.as_sample() for s in data.samples if not store.has(s.id)])
    for sample_id, error in [*data.skipped, *failed.items()]:  # unreadable when listed, or when checked
        store.write_failure(sample_id, error)
    vlm = model or (create("captioner", captioner, **options) if good else None)  # nothing to do: no model
    scorer = build_scorer(plan_scorer(config.scorer, config.plugins, config.cache_dir)) if good else None
    for start in tqdm(range(0, len(good), batch_size), desc=f"{captioner} captions", unit="batch"):
        batch = good[start : start + batch_size]
        begin = time.perf_counter()
        captions = vlm.caption([load_image(s.media) for s in batch])
        llm = time.perf_counter() - begin
        begin = time.perf_counter()
        emb = np.asarray(scorer.embed_samples(batch), np.float32)
        text_emb = np.asarray(scorer.embed_texts(captions), np.float32)  # one call for the batch's captions
        scores = [float(np.asarray(scorer.similarity(e[None], t[None]))[0, 0]) for e, t in zip(emb, text_emb)]
        scoring = (time.perf_counter() - begin) / len(batch)
        usage = [usage_of(c) for c in captions]  # a plugin's captioner may return plain strings: None
        tokens = [u.generated if u else 0 for u in usage]  # the batch's time shared by generated tokens
        for sample, caption, score, u, seconds in zip(batch, captions, scores, usage, shares(llm, tokens)):
            store.write(_result(sample, caption, score, u, seconds, scoring))
    results = store.results()
    captions = {r.sample_id: r.caption for r in results}
    write_atomic(RunFolder(folder).captions, json.dumps(captions, indent=2, ensure_ascii=False))
    write_record(build_record(config, baseline_key(config, captioner, options), folder, results, store.failures(), {},
                              time.perf_counter() - started, {**data.counts(), "computed": len(good)}, {}, "baseline"))
    return {"results_dir": str(folder), "captions": str(RunFolder(folder).captions), "done": len(captions),
            "failed": store.failures()}
