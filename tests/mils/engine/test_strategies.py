"""Strategies beside the MILS loop (retrieval, best-of-N), equal budgets, and a budget matched to a run."""

from __future__ import annotations

import re

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


def _listed(prompt: str) -> list[tuple[str, str]]:
    """The prompt's scored example lines, as (score, text), in the order written."""
    return [tuple(line.split(": ", 1)) for line in prompt.splitlines() if re.match(r"^[0-9.]+: ", line)]


def test_opro_writes_its_history_ascending_with_whole_number_scores(fake_scorer, fake_bank, text_samples):
    """OPRO's prompt: the best last, scores bucketed 0-100 over those listed, at most `shown` of the kept set."""
    gen = Recording()
    results = make_optimiser(gen, fake_scorer, fake_bank, steps=2, keep=12, requested=5, strategy="opro",
                             strategy_options={"shown": 10}).run(text_samples[:2])
    for prompt, result in zip(gen.prompts[1], results):  # step 2: after one step of feedback
        listed = _listed(prompt)
        scores = [int(score) for score, _ in listed]
        assert len(listed) == 10 and scores == sorted(scores) and scores[-1] == 100 and min(scores) >= 0
        assert listed[-1][1] == result.history[1].best  # the best of the kept set, written last
    mils = Recording()
    make_optimiser(mils, fake_scorer, fake_bank, steps=2, keep=6, requested=5).run(text_samples[:2])
    decimals = [float(score) for score, _ in _listed(mils.prompts[1][0])]
    assert decimals == sorted(decimals, reverse=True) and len(decimals) == 6  # MILS: best first, 3 decimals


def test_opro_buckets_scores_over_those_listed_and_pairs_each_score_on_its_own():
    from mils.engine.strategies.opro import Opro
    from mils.engine.strategy import PromptView

    kept = [("best", 0.31), ("mid", 0.27), ("low", 0.26), ("worst", 0.21)]
    listing = Opro().listing(PromptView(kept, None, kept, higher_is_better=True))
    assert [(listing.score_text(v), t) for t, v in listing.scored] == [("0", "worst"), ("50", "low"), ("60", "mid"),
                                                                      ("100", "best")]
    coarse = Opro(buckets=4, order="descending").listing(PromptView(kept, None, kept, higher_is_better=True))
    assert [coarse.score_text(v) for _, v in coarse.scored] == ["100", "50", "50", "0"]  # 0.6 and 0.5: level 2 of 4

    kept = [("a", (0.1, 2.0)), ("b", (0.2, 1.0)), ("c", (0.3, 3.0))]
    listing = Opro(buckets=10).listing(PromptView(kept, None, kept, higher_is_better=False))
    assert [t for t, _ in listing.scored] == ["c", "b", "a"]
    assert [listing.score_text(v) for _, v in listing.scored] == ["100, 100", "50, 0", "0, 50"]


def test_a_strategy_and_its_options_are_checked_when_the_config_is_read():
    with pytest.raises(KeyError, match="Did you mean 'opro'"):
        build_config("offline", {"loop": {"strategy": "oprp"}})
    with pytest.raises(InputError, match="loop.strategy_options.ordr: .*did you mean 'order'"):
        build_config("offline", {"loop": {"strategy": "opro", "strategy_options": {"ordr": "ascending"}}})
    with pytest.raises(InputError, match="'ascending'.*not 'random'"):
        build_config("offline", {"loop": {"strategy": "opro", "strategy_options": {"order": "random"}}})
    assert build_config("offline", {"loop": {"strategy": "opro"}}).loop.effective_steps == 3


def test_a_new_strategy_is_one_registered_class(monkeypatch, fake_scorer, fake_bank, text_samples):
    """The extension point: a strategy a plugin adds needs its own class alone (here: the kept set worst first)."""
    from mils import registry
    from mils.engine import Listing, Strategy

    class WorstFirst(Strategy):
        def listing(self, view):
            return Listing(view.kept[::-1])

    monkeypatch.setitem(registry._FACTORIES, ("strategy", "worst_first"), WorstFirst)
    gen = Recording()
    make_optimiser(gen, fake_scorer, fake_bank, steps=2, keep=4, requested=5, strategy="worst_first").run(
        text_samples[:1])
    scores = [float(score) for score, _ in _listed(gen.prompts[1][0])]
    assert scores == sorted(scores) and len(scores) == 4


def test_retrieval_is_step_zero_alone(fake_generator, fake_scorer, fake_bank, text_samples):
    results = make_optimiser(fake_generator, fake_scorer, fake_bank, steps=5, keep=4, requested=5,
                             strategy="retrieval").run(text_samples)
    assert fake_generator.batches == [] and all(len(r.history) == 1 for r in results)


@pytest.mark.parametrize("kind, limit", [("generated_tokens", 60), ("scorer_calls", 12)])
def test_a_budget_stops_every_strategy_at_the_same_spend_within_one_request(fake_scorer, fake_bank, text_samples,
                                                                            kind, limit):
    budget = {kind: limit}
    for strategy in ("mils", "best_of_n", "opro", "memory_concepts", "gepa"):
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


def test_the_memory_strategy_prompts_with_the_concepts_of_the_memorys_top_k(fake_scorer, text_samples):
    """MeaCap-style: step 0 retrieves the memory's top-K; step 1's prompt gives the key concepts of the top
    `retrieved` of them (no scored captions), and only theirs."""
    from mils.engine.strategies.memory_concepts import key_concepts

    memory = ["red cat sofa", "cat sofa cushion", "red barn field", "sofa lamp room", "blue boat lake", "dog park"]
    gen = Recording()
    results = make_optimiser(gen, fake_scorer, memory, steps=1, keep=4, requested=5, strategy="memory_concepts",
                             strategy_options={"retrieved": 2, "concepts": 4}).run(text_samples[:1])
    step0 = results[0].trace[0].kept  # the retrieved top-K, best first
    retrieved = [text for text, _ in step0[:2]]
    assert retrieved[0] == "red cat sofa"  # the memory's best for "red cat on sofa"
    prompt = gen.prompts[0][0]
    line = next(line for line in prompt.splitlines() if "key concepts:" in line)
    concepts = line.split("key concepts: ", 1)[1].rstrip(".").split(", ")
    assert concepts == key_concepts(retrieved, 4) and set(concepts) <= set(" ".join(retrieved).split())
    assert "0." not in prompt and "lake" not in prompt  # no scored captions, nothing from below the top 2


class WordsEncoder:
    """A sentence embedder of bag-of-words vectors (a stand-in for MiniLM: shared words, similar texts)."""

    def encode(self, texts, normalize_embeddings=True, show_progress_bar=False):
        import zlib

        import numpy as np

        rows = np.full((len(texts), 256), 1e-6)
        for row, text in zip(rows, texts):
            for word in text.split():
                row[zlib.crc32(word.encode()) % 256] += 1
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_the_memory_strategy_fuses_the_score_with_the_similarity_to_its_retrieved_captions(monkeypatch, fake_scorer,
                                                                                            text_samples):
    """MeaCap's ranking: fusion 1 keeps by the text-text similarity to the memory's retrieved top alone, 0 by the
    scorer alone; step 0 (the retrieval itself) is never fused; the weight is checked when the config is read."""
    import numpy as np

    from mils.engine.strategies import memory_concepts
    from mils.engine.strategies.memory_concepts import MemoryConcepts

    monkeypatch.setattr(memory_concepts, "sentence_encoder", lambda name: WordsEncoder())
    texts, scores = ["blue boat lake", "cat sofa", "red cat sofa", "lake"], np.array([0.9, 0.5, 0.4, 0.8])
    first = [("red cat sofa", 0.7), ("cat sofa cushion", 0.6)]
    pool = [(t, float(v)) for t, v in zip(texts, scores)].__getitem__
    assert MemoryConcepts(retrieved=2, fusion=1.0).kept(pool, scores, 4, True, first)[:2] == [2, 1]  # the cat texts
    assert MemoryConcepts(retrieved=2, fusion=0.0).kept(pool, scores, 4, True, first) is None  # the loop's top-K
    assert MemoryConcepts(retrieved=2, fusion=1.0).kept(pool, scores, 4, True, None) is None  # step 0
    assert MemoryConcepts(retrieved=2, fusion=0.2).kept(pool, scores, 4, True, first)[0] == 0  # the score still leads
    with pytest.raises(InputError, match="fusion is a weight from 0 to 1"):
        build_config("offline", {"loop": {"strategy": "memory_concepts", "strategy_options": {"fusion": 1.5}}})

    memory = ["red cat sofa", "cat sofa cushion", "red barn field", "sofa lamp room", "blue boat lake", "dog park"]
    fused = make_optimiser(FakeGenerator(), fake_scorer, memory, steps=2, keep=4, requested=5, strategy="memory_concepts",
                           strategy_options={"retrieved": 2, "fusion": 1.0}).run(text_samples[:1])[0]
    plain = make_optimiser(FakeGenerator(), fake_scorer, memory, steps=2, keep=4, requested=5, strategy="memory_concepts",
                           strategy_options={"retrieved": 2}).run(text_samples[:1])[0]
    retrieved = [text for text, _ in fused.trace[0].kept[:2]]
    encoder = WordsEncoder()
    closeness = [float((encoder.encode([t]) @ encoder.encode(retrieved).T).mean()) for t, _ in fused.kept]
    assert all(a >= b - 1e-6 for a, b in zip(closeness, closeness[1:]))  # kept by the similarity to the retrieved
    assert [t for t, _ in fused.kept] != [t for t, _ in plain.kept]
    assert plain.score >= fused.score and [v for _, v in plain.kept] == sorted([v for _, v in plain.kept], reverse=True)


def test_the_packaged_sentence_embedder_finds_the_paraphrase():
    """The fusion's real embedder loads offline (all-MiniLM-L6-v2 from its PyPI package)."""
    from mils.engine.strategies.memory_concepts import sentence_encoder

    vectors = sentence_encoder("all-MiniLM-L6-v2").encode(["a cat on a sofa", "a kitten lying on a couch",
                                                           "a boat on a lake"], normalize_embeddings=True)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def test_key_concepts_weigh_a_word_by_the_rank_of_the_captions_that_use_it():
    from mils.engine.strategies.memory_concepts import key_concepts

    texts = ["A photo of a dog on a beach", "Close-up image of a dog with a ball", "Waves on a beach at sunset"]
    assert key_concepts(texts, 4) == ["dog", "beach", "ball", "waves"]  # dog 1.5, beach 1.33, ball 0.5, waves 0.33


def test_gepa_keeps_a_pareto_pool_over_score_and_length_with_the_best_score_first():
    import numpy as np

    from mils.engine.strategies.gepa import Gepa, dominates

    pool = [("a cat", 0.5), ("a red cat on a sofa", 0.8), ("a long red cat sitting on a big sofa", 0.7),
            ("a cat on a sofa", 0.6), ("cat", 0.3)]
    scores = np.array([v for _, v in pool])
    kept = Gepa().kept(pool.__getitem__, scores, 5, higher_is_better=True)
    assert [pool[i][0] for i in kept] == ["a red cat on a sofa", "a cat on a sofa", "a cat", "cat",
                                          "a long red cat sitting on a big sofa"]  # the dominated one last
    assert Gepa().kept(pool.__getitem__, scores, 3, True) == kept[:3]
    assert Gepa(brevity=False).kept(pool.__getitem__, scores, 3, True) == [1, 2, 3]  # one objective: the top-K
    assert dominates((0.8, -6.0), (0.7, -9.0)) and not dominates((0.8, -6.0), (0.6, -5.0))


def test_gepas_reflection_is_never_a_candidate():
    """SmolLM2's replies to the GEPA prompt (seen on the bundled photos): reflections on lines of their own,
    numbered, or quoted; only the other lines are candidates."""
    from mils.engine.parsing import parse_candidates
    from mils.engine.strategies.gepa import Gepa

    reply = ('Reflection: "The best-scoring attempts share a photo of a missile."\n\n'
             '1. Reflections: Reflections: 1.\n"Reflection: Reflections on the beauty of the world."\n'
             '2. a rocket on the launch pad\n3. a missile at dawn')
    assert parse_candidates(Gepa().reply(reply)) == ["a rocket on the launch pad", "a missile at dawn"]
    assert parse_candidates(Gepa().reply("Reflection: A photo of a machine.\nReflection: A photo.")) == []


def test_gepa_in_the_loop_reflects_on_its_pool_and_keeps_it_pareto_optimal(fake_scorer, fake_bank, text_samples):
    from mils.engine.strategies.gepa import Gepa, dominates

    gen = Recording()
    results = make_optimiser(gen, fake_scorer, fake_bank, steps=3, keep=6, requested=5, strategy="gepa").run(
        text_samples[:2])
    prompt = gen.prompts[1][0]
    assert 'starts with "Reflection:"' in prompt and " words: " in prompt and "fewer is better" in prompt
    from mils.config.task_specs import get_task
    from mils.engine.strategy import PromptView

    kept = [("a cat", 0.5)]
    quiet = Gepa(reflect=False).prompt(PromptView(kept, None, kept, True), get_task("image_captioning").template, 5, {})
    assert "Reflection" not in quiet and "score 0.500, 2 words: a cat\n\nWrite 5 new descriptions" in quiet
    for r in results:
        points = [Gepa().objectives(t, v, True) for t, v in r.kept]
        dominated = [any(dominates(q, p) for q in points) for p in points]
        assert r.kept[0][1] == max(v for _, v in r.kept)  # the scorer's best first: the run's caption
        assert dominated[1:] == sorted(dominated[1:])  # then the Pareto pool, then the dominated rest
        assert [h.best_score for h in r.history] == sorted(h.best_score for h in r.history)
