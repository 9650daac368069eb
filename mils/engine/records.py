"""What a run records per sample: the step history, the per-step cost and trace, the final kept
set and the raw replies (:class:`SampleResult`), and the score's direction. Written by the loop,
stored by :mod:`mils.storage.results`, read by the evaluation, the viewer and the judging tools."""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class StepRecord:
    step: int
    best: str
    best_score: float
    mean_topk: float
    new_unique: int
    empty_reply: bool = False
    scored_mean: float | None = None  # step 0: the mean score of every initial candidate (the official log's)


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
    cached_prompt_tokens: int = 0  # of the tokens above, those of replies the response cache served
    cached_generated_tokens: int = 0
    reasoning_tokens: int = 0  # of generated_tokens: a reasoning model's thinking


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
    higher_is_better: bool = True  # the scorer's direction (style transfer's distances: False)

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
