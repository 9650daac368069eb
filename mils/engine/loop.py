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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mils.engine.budget import Budget, spent  # noqa: F401  (re-exported)
from mils.engine.cost import shares
from mils.engine.parsing import dedup_key, official_cleanup, parse_candidates, parse_official
from mils.engine.progress import PhaseTimer, log_empty_replies  # noqa: F401  (PhaseTimer re-exported)
from mils.engine.prompts import PromptTemplate
from mils.engine.records import (  # noqa: F401  (re-exported: the loop's results)
    TRACE_KEPT,
    TRACE_NEW,
    SampleResult,
    StepCost,
    StepRecord,
    StepTrace,
    Value,
    aggregate,
)
from mils.engine.seeding import derive_seed
from mils.engine.strategy import PromptView, ScorerGuide, get_strategy
from mils.errors import ComponentError, InputError
from mils.protocols import CandidateScorer, Generator, Rendering, Sample, Scorer, usage_of, whole_lines

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
    seed: int = Field(0, ge=-(2**63), lt=2**63)  # a torch generator and the engines take 64 bits
    max_words: int | None = Field(77, ge=1)  # longer candidates are dropped; None: no cap (text-to-image)
    parser: Literal["robust", "official"] = "robust"  # official: the MILS code's line-counter parser
    dedup: Literal["normalised", "exact"] = "normalised"  # exact: the MILS code's string equality
    cleanup: Literal["none", "official"] = "none"  # official: transformers 4.x's reply clean-up (mils/engine/parsing.py)
    # which of two equal scores wins a step: kept_first (the one already kept) or new_first (the new
    # candidate: the MILS code puts the new ones first in the pool and its sort is stable)
    ties: Literal["kept_first", "new_first"] = "kept_first"
    strategy: str = "mils"  # mils, best_of_n, retrieval, opro...: mils/engine/strategy.py, strategies/
    strategy_options: dict[str, Any] = Field(default_factory=dict)
    budget: Budget | None = None  # stop each sample at this spend (steps stays the upper bound)

    @model_validator(mode="after")
    def _strategy_is_known(self) -> "LoopOptions":
        get_strategy(self.strategy, self.strategy_options)  # an unknown name or option fails here, before any model
        return self

    @property
    def effective_steps(self) -> int:
        return get_strategy(self.strategy, self.strategy_options).steps(self.steps)


@dataclass
class _State:
    sample: Sample
    kept: list[tuple[str, Value]]
    seen: set[str]
    embedding: np.ndarray | None
    shown: list[tuple[str, Value]] | None = None  # what the next prompt lists, when not the kept set
    first: list[tuple[str, Value]] | None = None  # what step 1's prompt listed (best_of_n asks from it again)
    history: list[StepRecord] = field(default_factory=list)
    unchanged: int = 0
    stopped_early_at: int | None = None
    raw_replies: list[str] = field(default_factory=list)
    cost: list[StepCost] = field(default_factory=list)
    trace: list[StepTrace] = field(default_factory=list)


@dataclass
class Arrival:
    """A reply to ``state``'s request at ``step``: its prompt, and the LLM seconds it is charged."""

    state: _State
    step: int
    prompt: str
    reply: str
    llm_seconds: float
    guide: ScorerGuide | None = None  # a guided decode's scorer forwards: the sample's, counted as scorer work


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
        bank_index: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        """``bank_emb`` (two-tower scorers): the bank's cached text embeddings; without it the
        initial candidates (``initial_texts(sample)``, else the bank) are scored like new ones.
        ``extra_initial(sample)``: texts scored beside the bank at step 0 (e.g. a captioner's
        caption of that sample, which MILS then refines). ``bank_index(sample_emb)``: the bank rows
        step 0 scores for a sample (its shortlist; None: every row)."""
        if bank_emb is not None and len(bank_texts) != len(bank_emb):
            raise InputError(f"bank has {len(bank_texts)} texts but {len(bank_emb)} embeddings")
        if not isinstance(scorer, (Scorer, CandidateScorer)):
            raise TypeError(f"{type(scorer).__name__} is neither a two-tower Scorer nor a CandidateScorer")
        self.generator, self.scorer, self.template = generator, scorer, template
        self._key = dedup_key(options.dedup)
        self.bank_texts, self.bank_emb, self.bank_index = list(bank_texts), bank_emb, bank_index
        self._bank_set = set(self.bank_texts)
        self.options = options
        self.strategy = get_strategy(options.strategy, options.strategy_options)
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
        kept before new, or new before kept with ``ties: new_first``), never by chance.
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

    def _chosen(self, pool: Callable[[int], tuple[str, Value]], scores: np.ndarray, sample_id: str, step: int,
                first: list | None = None) -> tuple[list[tuple[str, Value]], list[tuple[str, Value]] | None]:
        """The kept and shown (text, value) lists of :meth:`_select` (or the strategy's own kept set);
        ``pool(i)`` is candidate i; ``first``: what the sample's step 1 listed (None at step 0)."""
        own = self.strategy.kept(pool, scores, self.options.keep, self._sign > 0, first)
        if own is not None:
            return [pool(i) for i in own], None
        kept, shown = self._select(scores, sample_id, step)
        return [pool(i) for i in kept], None if shown is None else [pool(i) for i in shown]

    def _record(self, state: _State, step: int, new_unique: int, empty: bool,
                new: Sequence[tuple[str, Value]] = (), scored_mean: float | None = None) -> None:
        state.trace.append(StepTrace(state.kept[:TRACE_KEPT], list(new[:TRACE_NEW])))
        # kept[0] is the best ever seen: the top slot is never given to exploration
        best, best_value = state.kept[0]
        scores = [aggregate(v) for _, v in state.kept]
        state.history.append(StepRecord(step, best, aggregate(best_value), float(np.mean(scores)), new_unique, empty,
                                        scored_mean))

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
            kept_lists, scored, means = self._from_bank(samples, sample_emb)
        else:
            texts = [list(dict.fromkeys([*(self.initial_texts(s) if self.initial_texts else self.bank_texts),
                                         *(self.extra_initial(s) if self.extra_initial else [])]))
                     for s in samples]
            scored = [len(ts) for ts in texts]
            with self.timer("bank_scoring"):
                values = self._score(samples, sample_emb, texts)
            kept_lists = [self._chosen(lambda i, ts=ts, vs=vs: (ts[i], vs[i]), np.array([aggregate(v) for v in vs]),
                                       sample.seed_id, 0) for sample, ts, vs in zip(samples, texts, values)]
            means = [float(np.mean([aggregate(v) for v in vs])) if vs else None for vs in values]
        seconds = (time.perf_counter() - start) / max(len(samples), 1)
        renders = shares(self._images_made() - made, scored)
        for sample, (kept, shown), emb, n, r, mean in zip(samples, kept_lists, sample_emb, scored, renders, means):
            state = _State(sample, kept, {self._key(t) for t, _ in kept + (shown or [])}, emb, shown,
                           first=list(shown or kept))
            state.cost.append(StepCost(0, None, None, 0.0, n, seconds, r))
            self._record(state, 0, new_unique=len(kept), empty=False, scored_mean=mean)
            states.append(state)
        return states

    def _from_bank(self, samples: Sequence[Sample], sample_emb: np.ndarray) -> tuple[list, list[int], list[float]]:
        """Step 0 from the cached bank embeddings (plus each sample's ``extra_initial`` texts): the
        kept/shown lists, the candidates scored and their mean score, per sample."""
        with self.timer("bank_scoring"):
            # row by row, like candidate scoring: a sample's scores never depend on its batch
            rows = [self.bank_index(e) if self.bank_index else np.arange(len(self.bank_texts)) for e in sample_emb]
            sims = [np.asarray(self.scorer.similarity(e[None], self.bank_emb[r] if self.bank_index else self.bank_emb))[0]
                    for e, r in zip(sample_emb, rows)]
            extras = [[t for t in dict.fromkeys(self.extra_initial(s)) if t not in self._bank_set]
                      if self.extra_initial else [] for s in samples]
            extra_values = self._score(samples, sample_emb, extras)
        kept_lists, means = [], []
        for s, row, texts, values, at in zip(samples, sims, extras, extra_values, rows):
            scores = np.concatenate([row, np.asarray(values, np.float32)]) if texts else row
            n = len(row)
            means.append(float(np.mean(scores)))
            kept_lists.append(self._chosen(lambda i, texts=texts, scores=scores, n=n, at=at: (
                texts[i - n] if i >= n else self.bank_texts[at[i]], float(scores[i])), scores, s.seed_id, 0))
        return kept_lists, [len(self.bank_texts) + len(texts) for texts in extras], means

    def _images_made(self) -> int:
        """Images the scorer has rendered or edited so far (0 for scorers that make none)."""
        return int(self.scorer.images_made) if isinstance(self.scorer, Rendering) else 0

    def _score(self, samples: Sequence[Sample], sample_emb, texts: list[list[str]]) -> list[list[Value]]:
        """Scores of each sample's own candidate list."""
        if not any(texts):
            return [[] for _ in texts]
        with self._scoring:
            return self._score_locked(samples, sample_emb, texts)

    def _score_timed(self, samples: Sequence[Sample], sample_emb,
                     texts: list[list[str]]) -> tuple[list[list[Value]], float, int]:
        """:meth:`_score`, with the seconds and the renders of this call alone: measured inside the
        scorer lock, so under the async schedule a sample does not pay for the wait while another
        sample's candidates are scored (or rendered)."""
        if not any(texts):
            return [[] for _ in texts], 0.0, 0
        with self._scoring, self.timer("candidate_scoring"):
            start, made = time.perf_counter(), self._images_made()
            values = self._score_locked(samples, sample_emb, texts)
            return values, time.perf_counter() - start, self._images_made() - made

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

    def _guide(self, state: _State) -> ScorerGuide:
        """The sample's scores of texts, larger better (what a guided decode steers by; two-tower scorers)."""
        def guide(texts: Sequence[str]) -> list[float]:
            if not self._two_tower:
                raise ComponentError(f"guided decoding scores partial texts: {type(self.scorer).__name__} "
                                     "renders or edits per text (a two-tower scorer is needed)")
            values = self._score([state.sample], [state.embedding], [list(texts)])[0]
            return [self._sign * aggregate(v) for v in values]
        return ScorerGuide(guide)

    def request(self, state: _State, step: int) -> tuple[str, int]:
        """The prompt and seed of ``state``'s request at ``step``."""
        opts = self.options
        view = PromptView(state.kept, state.shown, state.first or state.shown or state.kept, self.scorer.higher_is_better)
        prompt = self.strategy.prompt(view, self.template, opts.requested,
                                      self.prompt_extra(state.sample) if self.prompt_extra else {})
        return prompt, derive_seed(opts.seed, state.sample.seed_id, step, "generate")

    def step(self, states: list[_State], step: int) -> None:
        """One lockstep step over the still-active states."""
        active = [s for s in states if s.stopped_early_at is None]
        if not active:
            return
        with self.timer("other"):
            prompts, seeds = map(list, zip(*(self.request(s, step) for s in active)))
        start, guides = time.perf_counter(), [self._guide(s) for s in active]
        with self.timer("generation"):
            replies = self.strategy.generate(self.generator, prompts, seeds, guides)
        llm_seconds = time.perf_counter() - start - sum(g.seconds for g in guides)  # the guides' are scorer time
        if len(replies) != len(active):
            raise ComponentError(f"generator returned {len(replies)} replies for {len(active)} prompts")
        usage = [usage_of(r) for r in replies]
        charged = shares(llm_seconds, [u.generated if u else 0 for u in usage])
        self.finish([Arrival(*a) for a in zip(active, [step] * len(active), prompts, replies, charged, guides)])

    def finish(self, arrivals: Sequence[Arrival]) -> None:
        """Parse the replies, score every new candidate in one scorer call, update each state:
        the lockstep step's second half, and what the async schedule does with a micro-batch of
        replies (each from its own sample and step)."""
        opts = self.options
        with self.timer("other"):
            new_per_state = []
            for a in arrivals:
                state, reply = a.state, a.reply
                state.raw_replies.append(str(reply))  # as the LLM wrote it, a half-written last line too
                # the official parser reads a cut reply whole, as the MILS code does (its last line counts
                # when it has a counter); the robust one drops the half-written line
                tidy = official_cleanup if opts.cleanup == "official" else str
                text = self.strategy.reply(tidy(str(reply) if opts.parser == "official" else whole_lines(reply)))
                found = (parse_official(text) if opts.parser == "official"
                         else parse_candidates(text, max_words=opts.max_words, prompt=a.prompt, key=self._key))
                fresh = [t for t in found if self._key(t) not in state.seen]
                state.seen.update(self._key(t) for t in fresh)
                new_per_state.append((fresh, not found))
        values, seconds, made = self._score_timed([a.state.sample for a in arrivals],
                                                  [a.state.embedding for a in arrivals],
                                                  [fresh for fresh, _ in new_per_state])
        log_empty_replies([a.step for a in arrivals], [empty for _, empty in new_per_state], opts.steps)
        counts = [len(fresh) for fresh, _ in new_per_state]
        scorer_seconds, renders = shares(seconds, counts), shares(made, counts)
        with self.timer("other"):
            for n, (a, (fresh, empty), new_values) in enumerate(zip(arrivals, new_per_state, values)):
                state, step, u, g = a.state, a.step, usage_of(a.reply), a.guide
                cached = u is not None and u.cached
                state.cost.append(StepCost(step, u.prompt if u else None, u.generated if u else None, a.llm_seconds,
                                           len(fresh) + (g.texts if g else 0),
                                           scorer_seconds[n] + (g.seconds if g else 0.0), renders[n],
                                           u.prompt if cached else 0, u.generated if cached else 0,
                                           u.reasoning if u else 0))
                scored = list(zip(fresh, new_values))
                before = {t for t, _ in state.kept}
                pool = scored + state.kept if opts.ties == "new_first" else state.kept + scored
                state.kept, state.shown = self._chosen(pool.__getitem__, np.array([aggregate(v) for _, v in pool]),
                                                       state.sample.seed_id, step, state.first)
                self._record(state, step, len(fresh), empty, scored)
                state.unchanged = state.unchanged + 1 if {t for t, _ in state.kept} == before else 0
                if opts.patience is not None and state.unchanged >= opts.patience:
                    state.stopped_early_at = step
                if opts.budget is not None and spent(state.cost, opts.budget.kind) >= opts.budget.limit:
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
        for step in range(1, self.options.effective_steps + 1):
            self.step(states, step)
            if progress is not None:
                progress.update(len(samples))
                progress.set_postfix(step=step, best=f"{np.mean([aggregate(s.kept[0][1]) for s in states]):.3f}")
        return self.results(states)

    def results(self, states: Sequence[_State]) -> list[SampleResult]:
        return [
            SampleResult(s.sample.id, s.history, s.kept, s.stopped_early_at, s.raw_replies, _media_name(s.sample.media),
                         s.cost, s.trace, self.scorer.higher_is_better)
            for s in states
        ]


def _media_name(media) -> str | None:
    """A file as an absolute path (a relative one resolves only where the run started); a text as is."""
    return str(media.absolute()) if isinstance(media, Path) else media if isinstance(media, str) else None
