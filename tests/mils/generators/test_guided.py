"""Scorer-guided decoding (mils/generators/guided.py, strategy `guided`): on a tiny random Llama the scorer's
preference moves the tokens drawn; the strategy is refused where it cannot steer."""

import numpy as np
import pytest

from mils.engine.sampling import SamplingOptions
from mils.errors import ComponentError, InputError
from mils.generators.guided import current_line, steered
from mils.generators.transformers_llm import TransformersGenerator
from mils.protocols import GuidedGenerator


@pytest.fixture(scope="module")
def tiny_generator(tiny):
    model, tok = tiny
    gen = TransformersGenerator(model, tok, SamplingOptions(max_new_tokens=40, temperature=1.0))
    gen.eos_ids = [tok.convert_tokens_to_ids("<|im_end|>")]
    return gen


def test_the_guide_sees_the_line_being_written_and_moves_the_draw_toward_its_preference():
    assert current_line("1. a dog\n2. a red") == "a red" and current_line("- cat") == "cat"
    p = steered(np.array([0.0, 1.0, 0.0]), np.log(np.array([0.5, 0.25, 0.25])), weight=2.0)
    assert p.argmax() == 1 and abs(p.sum() - 1) < 1e-9
    assert np.allclose(steered(np.zeros(3), np.log(np.array([0.5, 0.25, 0.25])), 5.0), [0.5, 0.25, 0.25])


def test_a_guide_that_likes_cats_makes_the_tiny_model_write_more_of_them(tiny_generator):
    """The defining behaviour: the same model, prompts and seeds; with the scorer steering, the tokens drawn
    move toward what it prefers (here: lines that say "cat")."""
    assert isinstance(tiny_generator, GuidedGenerator)
    prompts, seeds = ["a man sitting on a red car"] * 6, list(range(6))
    seen = []
    likes_cats = [lambda lines: [float(line.split().count("cat")) for line in lines]] * 6

    def cats(weight: float) -> int:
        replies = tiny_generator.generate_guided(prompts, seeds, likes_cats, width=8, weight=weight)
        seen.extend(r.usage.generated for r in replies)
        return sum(r.split().count("cat") for r in replies)

    unguided, guided = cats(0.0), cats(4.0)
    assert guided > unguided + 5, (unguided, guided)
    assert all(n > 0 for n in seen)  # each reply's tokens are in the ledger
    again = tiny_generator.generate_guided(prompts[:1], seeds[:1], likes_cats[:1], width=8, weight=4.0)
    assert again == tiny_generator.generate_guided(prompts[:1], seeds[:1], likes_cats[:1], width=8, weight=4.0)


def test_the_guided_strategy_steers_the_loop_and_is_refused_where_it_cannot(tiny_generator, fake_scorer, fake_bank,
                                                                            text_samples):
    from mils.config.run_config import build_config
    from tests.fakes import FakeGenerator
    from tests.mils.engine.test_loop import make_optimiser

    results = make_optimiser(tiny_generator, fake_scorer, fake_bank[:20], steps=1, keep=3, requested=3,
                             strategy="guided", strategy_options={"width": 4}).run(text_samples[:2])
    assert all(len(r.history) == 2 and r.cost[1].generated_tokens > 0 for r in results)
    # the guide's forwards (width texts per token) are the sample's scorer work in the ledger, not LLM time
    assert all(r.cost[1].candidates_scored >= 4 * r.cost[1].generated_tokens > 0 and r.cost[1].scorer_seconds > 0
               for r in results)
    with pytest.raises(ComponentError, match="has none"):
        make_optimiser(FakeGenerator(), fake_scorer, fake_bank, steps=1, strategy="guided").run(text_samples[:1])
    with pytest.raises(InputError, match="runs in lockstep"):
        build_config("offline", {"loop": {"strategy": "guided"}, "schedule": "async"})
    with pytest.raises(InputError, match="generator.backend transformers, not openai"):
        build_config("offline", {"loop": {"strategy": "guided"}, "generator": {"backend": "openai"}})
