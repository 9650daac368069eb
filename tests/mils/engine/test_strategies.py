"""Strategies beside the MILS loop (retrieval, best-of-N), equal budgets, and a budget matched to a run."""

from __future__ import annotations

import pytest

from mils.config.run_config import build_config
from mils.engine.loop import spent
from mils.errors import InputError
from mils.storage.results import ResultStore
from tests.fakes import FakeGenerator
from tests.mils.engine.test_loop import make_optimiser


class Recording(FakeGenerator):
    def __init__(self) -> None:
        super().__init__()
        self.prompts: list[list[str]] = []
        self.seeds: list[list[int]] = []

    def generate(self, prompts, seeds):
        self.prompts.append(list(prompts))
        self.seeds.append(list(seeds))
        return super().generate(prompts, seeds)


def test_best_of_n_asks_every_step_from_the_first_prompt_with_new_seeds(fake_scorer, fake_bank, text_samples):
    gen = Recording()
    results = make_optimiser(gen, fake_scorer, fake_bank, steps=4, keep=4, requested=5, strategy="best_of_n").run(
        text_samples[:2])
    assert all(step == gen.prompts[0] for step in gen.prompts)  # the bank's top-K, no feedback
    assert len({tuple(s) for s in gen.seeds}) == 4  # four independent draws
    mils = Recording()
    make_optimiser(mils, fake_scorer, fake_bank, steps=4, keep=4, requested=5).run(text_samples[:2])
    assert mils.prompts[0] == gen.prompts[0] and mils.prompts[-1] != gen.prompts[0]  # MILS feeds back
    for r in results:  # the best of everything asked is kept
        assert [h.best_score for h in r.history] == sorted(h.best_score for h in r.history)


def test_retrieval_is_step_zero_alone(fake_generator, fake_scorer, fake_bank, text_samples):
    results = make_optimiser(fake_generator, fake_scorer, fake_bank, steps=5, keep=4, requested=5,
                             strategy="retrieval").run(text_samples)
    assert fake_generator.batches == [] and all(len(r.history) == 1 for r in results)


@pytest.mark.parametrize("kind, limit", [("generated_tokens", 60), ("scorer_calls", 12)])
def test_a_budget_stops_every_strategy_at_the_same_spend_within_one_request(fake_scorer, fake_bank, text_samples,
                                                                            kind, limit):
    budget = {kind: limit}
    for strategy in ("mils", "best_of_n"):
        for r in make_optimiser(FakeGenerator(), fake_scorer, fake_bank, steps=50, keep=4, requested=5,
                                strategy=strategy, budget=budget).run(text_samples):
            steps = [c for c in r.cost if c.step > 0]
            last = {"generated_tokens": steps[-1].generated_tokens, "scorer_calls": steps[-1].candidates_scored}[kind]
            assert limit <= spent(r.cost, kind) < limit + max(last, 1), (strategy, r.sample_id)
            assert r.stopped_early_at == len(steps) < 50


def test_a_budget_below_one_request_is_refused_and_a_match_reads_the_runs_ledger(fake_generator, fake_scorer,
                                                                                 fake_bank, text_samples, tmp_path):
    with pytest.raises(InputError, match=r"loop.budget.generated_tokens 100 is below one request's cost \(up to "
                                         r"generator.max_new_tokens 200"):
        build_config("offline", {"loop": {"budget": {"generated_tokens": 100}}})
    with pytest.raises(InputError, match="exactly one of generated_tokens, llm_seconds, scorer_calls"):
        build_config("offline", {"loop": {"budget": {"generated_tokens": 500, "scorer_calls": 50}}})
    store = ResultStore(tmp_path / "run")
    results = make_optimiser(fake_generator, fake_scorer, fake_bank, steps=3, keep=4, requested=5).run(text_samples)
    for r in results:
        store.write(r)
    config = build_config("offline", {"generator": {"max_new_tokens": 20},
                                      "loop": {"match": {"run": str(tmp_path / "run"), "by": "generated_tokens"}}})
    mean = sum(spent(r.cost, "generated_tokens") for r in results) / len(results)
    assert config.loop.budget.generated_tokens == round(mean) > 20  # the run's mean spend per sample
    legacy = ResultStore(tmp_path / "legacy")
    for r in results:
        legacy.write(r.__class__(r.sample_id, r.history, r.kept))  # written before the ledger
    with pytest.raises(InputError, match="has no cost ledger for generated_tokens"):
        build_config("offline", {"loop": {"match": {"run": str(tmp_path / "legacy")}}})
    with pytest.raises(InputError, match="is not a results folder"):
        build_config("offline", {"loop": {"match": {"run": str(tmp_path / "nowhere")}}})
