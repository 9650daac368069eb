"""The run's scorer and a judge as two objectives (``scorer: {name: with_judge, options: {main_scorer: {...},
judge_scorer: {...}}}``): GEPA keeps a Pareto pool over several objectives, e.g. the optimised scorer and a held-out
judge. Each candidate gets two scores, [main, judge_weight x judge]: the loop ranks by their sum and shows both in
the prompt, and a multi-objective strategy (``gepa``: its Pareto pool) keeps the candidates no other beats on both.
Both members are two-tower scorers that score in the same direction; each embeds a sample and a text once per run.
The judge is then in the loop, no longer held out: judge the run with a third scorer (``mils rescore``)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from mils import registry
from mils.errors import InputError
from mils.protocols import Sample, Scorer


class WithJudge:
    """A CandidateScorer over two two-tower scorers: one column each."""

    def __init__(self, main: Scorer, judge: Scorer, judge_weight: float = 1.0) -> None:
        for role, member in (("main_scorer", main), ("judge_scorer", judge)):
            if not isinstance(member, Scorer):
                raise InputError(f"with_judge's {role} must be a two-tower scorer; {type(member).__name__} is not")
        if main.higher_is_better != judge.higher_is_better:
            raise InputError("with_judge's two scorers rank in opposite directions (a similarity and a distance)")
        self.members, self.weights = (main, judge), (1.0, judge_weight)
        self.higher_is_better = main.higher_is_better
        self._samples: list[dict[str, np.ndarray]] = [{}, {}]
        self._texts: list[dict[str, np.ndarray]] = [{}, {}]

    def fingerprint(self) -> str:
        return "with_judge:" + "|".join(m.fingerprint() for m in self.members) + f":{self.weights[1]}"

    @staticmethod
    def _embedded(cache: dict[str, np.ndarray], items: Sequence, key, embed) -> np.ndarray:
        """``embed``'s rows for ``items``, each embedded once (``key``: an item's name in ``cache``)."""
        missing = list({key(i): i for i in items if key(i) not in cache}.values())
        if missing:
            cache.update(zip(map(key, missing), np.asarray(embed(missing), np.float32)))
        return np.stack([cache[key(i)] for i in items])

    def score(self, samples: Sequence[Sample], candidates: Sequence[Sequence[str]]) -> list[np.ndarray]:
        out = []
        for sample, texts in zip(samples, candidates):
            if not texts:
                out.append(np.zeros((0, 2)))
                continue
            columns = []
            for n, (member, weight) in enumerate(zip(self.members, self.weights)):
                emb = self._embedded(self._samples[n], [sample], lambda s: s.id, member.embed_samples)
                text_emb = self._embedded(self._texts[n], list(texts), str, member.embed_texts)
                columns.append(weight * np.asarray(member.similarity(emb, text_emb), np.float64)[0])
            out.append(np.stack(columns, axis=1))
        return out


@registry.register("scorer", "with_judge")
def with_judge_scorer(main_scorer: dict[str, Any] | None = None, judge_scorer: dict[str, Any] | None = None,
                      judge_weight: float = 1.0) -> WithJudge:
    """``main_scorer``/``judge_scorer``: ``{"name": ..., "options": {...}}`` of registered two-tower scorers."""
    if not main_scorer or not judge_scorer:
        raise InputError("with_judge needs main_scorer and judge_scorer: {name: ..., options: {...}} each")
    return WithJudge(*(registry.create("scorer", spec["name"], **spec.get("options", {}))
                       for spec in (main_scorer, judge_scorer)), judge_weight)
