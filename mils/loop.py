"""The MILS optimisation loop, run in lockstep over a batch of samples.

Step 0 scores the initial bank (a matrix product against cached bank embeddings) and keeps the
top-K per sample. Every later step sends ONE batched generator call for all active samples,
parses the replies, scores only the new candidates, and keeps the top-K of old + new.
Randomness comes from seeds derived from (run seed, sample id, step), so a sample's result does
not depend on the batch it ran in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mils.errors import ComponentError, InputError
from mils.parsing import dedup_key, parse_candidates, parse_official
from mils.prompts import PromptTemplate
from mils.protocols import CandidateScorer, Generator, Sample, Scorer
from mils.seeding import derive_seed

log = logging.getLogger(__name__)


class LoopOptions(BaseModel):
    """Everything that shapes the optimisation (paper defaults for image captioning). The one
    definition and validation of these settings: the run config's ``loop`` section is this model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: int = Field(10, ge=0)
    keep: int = Field(50, ge=1)
    requested: int = Field(50, ge=1)
    exploration: float = Field(0.0, ge=0, lt=1)  # a fraction of the kept slots, explored from below the top
    # official: the pure top-K survives a step and the explored items are only shown in the prompt (the MILS code)
    exploration_style: Literal["suite", "official"] = "suite"
    patience: int | None = Field(None, ge=1)  # early stop after this many steps without a change
    seed: int = 0
    max_words: int | None = Field(77, ge=1)  # longer candidates are dropped; None: no cap (text-to-image)
    parser: Literal["robust", "official"] = "robust"  # official: the MILS code's line-counter parser
    dedup: Literal["normalised", "exact"] = "normalised"  # exact: the MILS code's string equality


@dataclass(frozen=True)
class StepRecord:
    step: int
    best: str
    best_score: float
    mean_topk: float
    new_unique: int
    empty_reply: bool = False


TRACE_KEPT, TRACE_NEW = 20, 100  # per step, what the viewer keeps of the top-K and of the new candidates


@dataclass(frozen=True)
class StepTrace:
    """What one step did, for the per-sample viewer: the kept top-K after the step (its first
    ``TRACE_KEPT``) and the new candidates parsed from the reply with their scores (at most
    ``TRACE_NEW``; none at step 0, whose candidates are the bank)."""

    kept: list[tuple[str, "Value"]]
    new: list[tuple[str, "Value"]] = field(default_factory=list)


@dataclass(frozen=True)
class StepCost:
    """What one step cost one sample. A batch's LLM time is shared by generated tokens (equally
    when the generator does not count tokens); scorer time, and the images a rendering scorer
    made (text-to-image renders, style edits), by candidates scored. Token counts are None for
    generators that report none."""

    step: int
    prompt_tokens: int | None
    generated_tokens: int | None
    llm_seconds: float
    candidates_scored: int
    scorer_seconds: float
    renders: float = 0.0


def _shares(total: float, weights: Sequence[float]) -> list[float]:
    """``total`` split in proportion to ``weights`` (equally when they are all zero)."""
    weight = float(sum(weights))
    return [total * w / weight for w in weights] if weight > 0 else [total / max(len(weights), 1)] * len(weights)


Value = float | tuple[float, ...]  # one score, or one per objective (ranked by their sum)


def aggregate(value: Value) -> float:
    return float(sum(value)) if isinstance(value, tuple) else float(value)


@dataclass
class SampleResult:
    """One sample's optimisation: the per-step history, the final kept set and the raw replies.
    ``media``: the sample's file, when it has one (shown beside the text by the judging tools)."""

    sample_id: str
    history: list[StepRecord]
    kept: list[tuple[str, Value]]
    stopped_early_at: int | None = None
    raw_replies: list[str] = field(default_factory=list, repr=False)
    media: str | None = None
    cost: list[StepCost] = field(default_factory=list, repr=False)
    trace: list[StepTrace] = field(default_factory=list, repr=False)

    @property
    def caption(self) -> str:
        return self.history[-1].best

    @property
    def score(self) -> float:
        return self.history[-1].best_score

    @property
    def initial(self) -> StepRecord:
        """Step 0: the best of the initial candidates (the retrieval baseline)."""
        return self.history[0]

    def at_step(self, step: int) -> StepRecord:
        """The record of ``step`` (an early-stopped sample keeps its last one)."""
        return self.history[min(step, len(self.history) - 1)]

    def truncated(self, steps: int) -> "SampleResult":
        """This result as a ``steps``-step run would have produced it (the kept set is the final one)."""
        return replace(self, history=self.history[: steps + 1], cost=[c for c in self.cost if c.step <= steps],
                       trace=self.trace[: steps + 1])


@dataclass
class _State:
    sample: Sample
    kept: list[tuple[str, Value]]
    seen: set[str]
    embedding: np.ndarray | None
    shown: list[tuple[str, Value]] | None = None  # what the next prompt lists, when not the kept set
    history: list[StepRecord] = field(default_factory=list)
    unchanged: int = 0
    stopped_early_at: int | None = None
    raw_replies: list[str] = field(default_factory=list)
    cost: list[StepCost] = field(default_factory=list)
    trace: list[StepTrace] = field(default_factory=list)


class PhaseTimer:
    """Wall-clock seconds per named phase (for the benchmark's breakdown)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()  # samples may advance in threads (mils/async_loop.py)

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self.seconds[phase] += time.perf_counter() - start


class Optimiser:
    """Runs MILS for batches of samples with one generator, one scorer and one bank."""

    def __init__(
        self,
        generator: Generator,
        scorer: Scorer | CandidateScorer,
        template: PromptTemplate,
        bank_texts: Sequence[str],
        bank_emb: np.ndarray | None,
        options: LoopOptions,
        timer: PhaseTimer | None = None,
        initial_texts: Callable[[Sample], Sequence[str]] | None = None,
        prompt_extra: Callable[[Sample], dict[str, str]] | None = None,
        extra_initial: Callable[[Sample], Sequence[str]] | None = None,
    ) -> None:
        """``bank_emb`` (two-tower scorers): the bank's cached text embeddings; without it the
        initial candidates (``initial_texts(sample)``, else the bank) are scored like new ones.
        ``extra_initial(sample)``: texts scored beside the bank at step 0 (e.g. a captioner's
        caption of that sample, which MILS then refines)."""
        if bank_emb is not None and len(bank_texts) != len(bank_emb):
            raise InputError(f"bank has {len(bank_texts)} texts but {len(bank_emb)} embeddings")
        if not isinstance(scorer, (Scorer, CandidateScorer)):
            raise TypeError(f"{type(scorer).__name__} is neither a two-tower Scorer nor a CandidateScorer")
        self.generator, self.scorer, self.template = generator, scorer, template
        self._key = dedup_key(options.dedup)
        self.bank_texts, self.bank_emb = list(bank_texts), bank_emb
        self._bank_set = set(self.bank_texts)
        self.options = options
        self.timer = timer or PhaseTimer()
        self.initial_texts, self.prompt_extra, self.extra_initial = initial_texts, prompt_extra, extra_initial
        self._two_tower = isinstance(scorer, Scorer)
        self._sign = 1.0 if scorer.higher_is_better else -1.0
        self._scoring = threading.Lock()  # one scorer call at a time when samples advance in threads

    # -- helpers -------------------------------------------------------------------------------
    def _select(self, scores: np.ndarray, sample_id: str, step: int) -> tuple[list[int], list[int] | None]:
        """Indices of the kept set, best-first, and of the set the next prompt shows (None: the kept one).

        Explored: the top (K - m) plus m drawn from below them, m = int(K * exploration); the top slot
        is never explored, so the best survives. Suite style: the explored set is kept and shown.
        Official style (the MILS code's ``sort_with_exploration``): the pure top-K is kept and the
        explored set, in the order drawn, is only shown. Ties break by position (bank order, then
        kept-before-new), never by chance.
        """
        k = min(self.options.keep, len(scores))
        n_explore = int(self.options.keep * self.options.exploration)
        order = np.argsort(-self._sign * scores, kind="stable")
        if n_explore == 0 or len(scores) <= k:
            return order[:k].tolist(), None
        top, rest = order[: k - n_explore], order[k - n_explore :]
        rng = np.random.default_rng(derive_seed(self.options.seed, sample_id, step, "explore"))
        picked = rng.choice(len(rest), size=n_explore, replace=False)
        if self.options.exploration_style == "official":
            return order[:k].tolist(), top.tolist() + rest[picked].tolist()
        return top.tolist() + rest[np.sort(picked)].tolist(), None

    def _chosen(self, pool: Callable[[int], tuple[str, Value]], scores: np.ndarray, sample_id: str,
                step: int) -> tuple[list[tuple[str, Value]], list[tuple[str, Value]] | None]:
        """The kept and shown (text, value) lists of :meth:`_select`; ``pool(i)`` is candidate i."""
        kept, shown = self._select(scores, sample_id, step)
        return [pool(i) for i in kept], None if shown is None else [pool(i) for i in shown]

    def _record(self, state: _State, step: int, new_unique: int, empty: bool,
                new: Sequence[tuple[str, Value]] = ()) -> None:
        state.trace.append(StepTrace(state.kept[:TRACE_KEPT], list(new[:TRACE_NEW])))
        # kept[0] is the best ever seen: the top slot is never given to exploration
        best, best_value = state.kept[0]
        scores = [aggregate(v) for _, v in state.kept]
        state.history.append(StepRecord(step, best, aggregate(best_value), float(np.mean(scores)), new_unique, empty))

    # -- the loop ------------------------------------------------------------------------------
    def initial(self, samples: Sequence[Sample]) -> list[_State]:
        """Step 0: embed each sample once and keep the top-K of its initial candidates."""
        states = []
        start, made = time.perf_counter(), self._images_made()
        if self._two_tower:
            with self.timer("sample_embedding"):
                sample_emb = np.asarray(self.scorer.embed_samples(samples), np.float32)
        else:
            sample_emb = [None] * len(samples)
        if self._two_tower and self.bank_emb is not None and self.initial_texts is None:
            kept_lists, scored = self._from_bank(samples, sample_emb)
        else:
            texts = [list(dict.fromkeys([*(self.initial_texts(s) if self.initial_texts else self.bank_texts),
                                         *(self.extra_initial(s) if self.extra_initial else [])]))
                     for s in samples]
            scored = [len(ts) for ts in texts]
            with self.timer("bank_scoring"):
                values = self._score(samples, sample_emb, texts)
            kept_lists = [self._chosen(lambda i, ts=ts, vs=vs: (ts[i], vs[i]), np.array([aggregate(v) for v in vs]),
                                       sample.id, 0) for sample, ts, vs in zip(samples, texts, values)]
        seconds = (time.perf_counter() - start) / max(len(samples), 1)
        renders = _shares(self._images_made() - made, scored)
        for sample, (kept, shown), emb, n, r in zip(samples, kept_lists, sample_emb, scored, renders):
            state = _State(sample, kept, {self._key(t) for t, _ in kept + (shown or [])}, emb, shown)
            state.cost.append(StepCost(0, None, None, 0.0, n, seconds, r))
            self._record(state, 0, new_unique=len(kept), empty=False)
            states.append(state)
        return states

    def _from_bank(self, samples: Sequence[Sample], sample_emb: np.ndarray) -> tuple[list, list[int]]:
        """Step 0 from the cached bank embeddings (plus each sample's ``extra_initial`` texts)."""
        with self.timer("bank_scoring"):
            # row by row, like candidate scoring: a sample's scores never depend on its batch
            sims = [np.asarray(self.scorer.similarity(e[None], self.bank_emb))[0] for e in sample_emb]
            extras = [[t for t in dict.fromkeys(self.extra_initial(s)) if t not in self._bank_set]
                      if self.extra_initial else [] for s in samples]
            extra_values = self._score(samples, sample_emb, extras)
        kept_lists = []
        for s, row, texts, values in zip(samples, sims, extras, extra_values):
            scores = np.concatenate([row, np.asarray(values, np.float32)]) if texts else row
            n = len(row)
            kept_lists.append(self._chosen(lambda i, texts=texts, scores=scores, n=n: (
                texts[i - n] if i >= n else self.bank_texts[i], float(scores[i])), scores, s.id, 0))
        return kept_lists, [len(self.bank_texts) + len(texts) for texts in extras]

    def _images_made(self) -> int:
        """Images the scorer has rendered or edited so far (0 for scorers that make none)."""
        return int(getattr(self.scorer, "images_made", 0))

    def _score(self, samples: Sequence[Sample], sample_emb, texts: list[list[str]]) -> list[list[Value]]:
        """Scores of each sample's own candidate list."""
        if not any(texts):
            return [[] for _ in texts]
        with self._scoring:
            return self._score_locked(samples, sample_emb, texts)

    def _score_locked(self, samples: Sequence[Sample], sample_emb, texts: list[list[str]]) -> list[list[Value]]:
        if not self._two_tower:
            arrays = self.scorer.score(samples, texts)
            return [[tuple(map(float, r)) if np.ndim(r) else float(r) for r in np.asarray(a)] for a in arrays]
        flat = [t for ts in texts for t in ts]
        text_emb = np.asarray(self.scorer.embed_texts(flat), np.float32)  # one call for the whole batch
        out, offset = [], 0
        for emb, ts in zip(sample_emb, texts):
            # each sample against its own candidates only: no cross-sample products, and a score that
            # cannot depend on the batch's shape (a batched matrix product can differ in the last bit)
            sims = np.asarray(self.scorer.similarity(np.asarray(emb)[None], text_emb[offset : offset + len(ts)]))
            out.append([float(v) for v in sims[0]])
            offset += len(ts)
        return out

    def step(self, states: list[_State], step: int) -> None:
        """One lockstep step over the still-active states."""
        active = [s for s in states if s.stopped_early_at is None]
        if not active:
            return
        opts = self.options
        with self.timer("other"):
            prompts = [self.template.render(s.shown or s.kept, opts.requested,
                                            **(self.prompt_extra(s.sample) if self.prompt_extra else {}))
                       for s in active]
            seeds = [derive_seed(opts.seed, s.sample.id, step, "generate") for s in active]
        start = time.perf_counter()
        with self.timer("generation"):
            replies = self.generator.generate(prompts, seeds)
        llm_seconds = time.perf_counter() - start
        usage = getattr(self.generator, "last_usage", None)
        usage = usage if usage is not None and len(usage) == len(active) else [None] * len(active)
        if len(replies) != len(active):
            raise ComponentError(f"generator returned {len(replies)} replies for {len(active)} prompts")
        with self.timer("other"):
            new_per_state = []
            for state, reply, prompt in zip(active, replies, prompts):
                state.raw_replies.append(reply)
                found = (parse_official(reply) if opts.parser == "official"
                         else parse_candidates(reply, max_words=opts.max_words, prompt=prompt, key=self._key))
                fresh = [t for t in found if self._key(t) not in state.seen]
                state.seen.update(self._key(t) for t in fresh)
                new_per_state.append((fresh, not found))
        start, made = time.perf_counter(), self._images_made()
        with self.timer("candidate_scoring"):
            values = self._score([s.sample for s in active], [s.embedding for s in active],
                                 [fresh for fresh, _ in new_per_state])
        counts = [len(fresh) for fresh, _ in new_per_state]
        scorer_seconds = _shares(time.perf_counter() - start, counts)
        renders = _shares(self._images_made() - made, counts)
        llm_shares = _shares(llm_seconds, [u.generated if u else 0 for u in usage])
        with self.timer("other"):
            for n, (state, (fresh, empty), new_values) in enumerate(zip(active, new_per_state, values)):
                u = usage[n]
                state.cost.append(StepCost(step, u.prompt if u else None, u.generated if u else None,
                                           llm_shares[n], len(fresh), scorer_seconds[n], renders[n]))
                if empty:
                    log.warning("sample %s step %d: LLM reply had no usable line; keeping the previous top-K",
                                state.sample.id, step)
                scored = list(zip(fresh, new_values))
                before = {t for t, _ in state.kept}
                pool = state.kept + scored
                state.kept, state.shown = self._chosen(pool.__getitem__, np.array([aggregate(v) for _, v in pool]),
                                                       state.sample.id, step)
                self._record(state, step, len(fresh), empty, scored)
                state.unchanged = state.unchanged + 1 if {t for t, _ in state.kept} == before else 0
                if opts.patience is not None and state.unchanged >= opts.patience:
                    state.stopped_early_at = step

    def run_batched(self, samples: Sequence[Sample], batch_size: int, progress=None) -> list[SampleResult]:
        """Optimise ``samples`` in consecutive batches of ``batch_size`` (input order kept)."""
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        results: list[SampleResult] = []
        for start in range(0, len(samples), batch_size):
            results.extend(self.run(samples[start : start + batch_size], progress))
        return results

    def run(self, samples: Sequence[Sample], progress=None) -> list[SampleResult]:
        """Optimise one batch of samples in lockstep; ``progress`` is an optional tqdm bar."""
        states = self.initial(samples)
        for step in range(1, self.options.steps + 1):
            self.step(states, step)
            if progress is not None:
                progress.update(len(samples))
                progress.set_postfix(step=step, best=f"{np.mean([aggregate(s.kept[0][1]) for s in states]):.3f}")
        return self.results(states)

    @staticmethod
    def results(states: Sequence[_State]) -> list[SampleResult]:
        return [
            SampleResult(s.sample.id, s.history, s.kept, s.stopped_early_at, s.raw_replies, _media_name(s.sample.media),
                         s.cost, s.trace)
            for s in states
        ]


def _media_name(media) -> str | None:
    """A file as an absolute path (a relative one resolves only where the run started); a text as is."""
    return str(media.absolute()) if isinstance(media, Path) else media if isinstance(media, str) else None
