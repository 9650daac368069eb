import math

import pytest

from mils.engine.cost import run_cost, step_costs
from mils.engine.cost import shares as _shares
from mils.engine.loop import SampleResult, StepCost, StepRecord
from tests.mils.engine.test_loop import make_optimiser


def test_shares_split_a_batch_by_weight_or_equally():
    assert _shares(6.0, [1, 2, 3]) == [1.0, 2.0, 3.0]
    assert _shares(3.0, [0, 0, 0]) == [1.0, 1.0, 1.0]


def test_loop_records_tokens_seconds_and_candidates_per_sample_and_step(fake_generator, fake_scorer, fake_bank,
                                                                        text_samples):
    results = make_optimiser(fake_generator, fake_scorer, fake_bank, steps=3, keep=4, requested=5).run(text_samples)
    for r in results:
        assert [c.step for c in r.cost] == [0, 1, 2, 3]
        assert r.cost[0].candidates_scored == len(fake_bank) and r.cost[0].llm_seconds == 0
        # the fake LLM counts words: a 5-word header, then 5 lines of a counter and up to 5 words
        assert all(0 < c.generated_tokens <= 5 + 5 * 6 and c.prompt_tokens > 50 for c in r.cost[1:])
        assert [c.candidates_scored for c in r.cost[1:]] == [h.new_unique for h in r.history[1:]]
    table = step_costs(results)
    assert table.loc[1, "generated_tokens"] == sum(r.cost[1].generated_tokens for r in results)
    assert math.isnan(table.loc[0, "generated_tokens"])  # step 0 asks no LLM


def test_run_totals_rates_and_projection_by_hand():
    def result(sample_id, tokens):
        history = [StepRecord(0, "a", 0.1, 0.1, 1), StepRecord(1, "b", 0.2, 0.2, 1)]
        cost = [StepCost(0, None, None, 0.0, 100, 0.5), StepCost(1, 400, tokens, 2.0, 5, 0.5)]
        return SampleResult(sample_id, history, [("b", 0.2)], cost=cost)

    totals = run_cost([result("a", 100), result("b", 300)], wall_seconds=10.0, dataset_size=1000)
    assert totals["generated_tokens"] == 400 and totals["prompt_tokens"] == 800
    assert totals["llm_seconds"] == 4.0 and totals["scorer_seconds"] == 2.0 and totals["candidates_scored"] == 210
    assert totals["seconds_per_sample"] == 3.0 and totals["samples_per_hour"] == pytest.approx(1200)
    assert totals["generated_tokens_per_second"] == 100.0
    assert totals["projected_dataset_hours"] == pytest.approx(3000 / 3600)
    assert totals["peak_rss_mb"] > 10
    assert result("a", 1).truncated(0).cost == [StepCost(0, None, None, 0.0, 100, 0.5)]


def test_results_written_before_the_ledger_give_nan_totals_not_an_error():
    old = SampleResult("a", [StepRecord(0, "a", 0.1, 0.1, 1), StepRecord(1, "b", 0.2, 0.2, 1)], [("b", 0.2)])
    totals = run_cost([old], wall_seconds=1.0)
    assert totals["samples"] == 1 and math.isnan(totals["generated_tokens"]) and math.isnan(totals["llm_seconds"])
