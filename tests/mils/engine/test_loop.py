import re

import numpy as np
import pytest

from mils.config.task_specs import get_task
from mils.engine.loop import LoopOptions, Optimiser
from mils.engine.parsing import normalise
from mils.protocols import Sample
from tests.fakes import FakeGenerator


def make_optimiser(generator, scorer, bank, **options):
    emb = scorer.embed_texts(bank)
    scorer.texts_embedded.clear()
    return Optimiser(generator, scorer, get_task("image_captioning").template, bank, emb, LoopOptions(**options))


def test_best_score_never_decreases_and_improves(fake_generator, fake_scorer, fake_bank, text_samples):
    opt = make_optimiser(fake_generator, fake_scorer, fake_bank, steps=6, keep=5, requested=5, seed=1)
    results = opt.run(text_samples)
    for result in results:
        best = [h.best_score for h in result.history]
        assert len(best) == 7
        assert all(b2 >= b1 for b1, b2 in zip(best, best[1:]))
    for result, sample in zip(results, text_samples):  # step 0 is the bank's best, found independently
        bank_scores = fake_scorer.similarity(fake_scorer.embed_samples([sample]), fake_scorer.embed_texts(fake_bank))
        assert result.history[0].best_score == pytest.approx(float(bank_scores.max()))
    # the fake LLM recombines words, so at least one sample must beat its bank retrieval
    assert any(r.history[-1].best_score > r.history[0].best_score for r in results)


def test_one_generator_call_per_step_for_the_whole_batch(fake_generator, fake_scorer, fake_bank, text_samples):
    opt = make_optimiser(fake_generator, fake_scorer, fake_bank, steps=3, keep=4, requested=5)
    opt.run(text_samples)
    assert fake_generator.batches == [len(text_samples)] * 3


def test_kept_set_is_top_k_of_everything_seen(fake_generator, fake_scorer, fake_bank, text_samples):
    opt = make_optimiser(fake_generator, fake_scorer, fake_bank, steps=3, keep=4, requested=5)
    for result in opt.run(text_samples):
        assert len(result.kept) == 4
        scores = [s for _, s in result.kept]
        assert scores == sorted(scores, reverse=True)
        assert result.kept[0] == (result.caption, result.score)
        assert np.isclose(result.history[-1].mean_topk, np.mean(scores))


def test_kept_candidates_are_never_re_embedded(fake_generator, fake_scorer, fake_bank, text_samples):
    opt = make_optimiser(fake_generator, fake_scorer, fake_bank, steps=4, keep=4, requested=5)
    result = opt.run(text_samples[:1])[0]
    # every text embedded during the loop was new to the sample: kept ones were not re-embedded
    keys = [normalise(t) for t in fake_scorer.texts_embedded]
    assert len(keys) == sum(h.new_unique for h in result.history[1:]) > 0
    assert len(keys) == len(set(keys))
    assert not set(keys) & {normalise(t) for t in fake_bank}
    assert fake_scorer.samples_embedded == ["s0"]  # each sample embedded once


class DuplicatingGenerator:
    def generate(self, prompts, seeds):
        return ["1. A red cat.\n2. a red cat\n3.  A  RED cat!\n4. blue dog\n5. Blue dog." for _ in prompts]


def test_duplicates_are_collapsed(fake_scorer, fake_bank, text_samples):
    opt = make_optimiser(DuplicatingGenerator(), fake_scorer, fake_bank, steps=2, keep=3, requested=5)
    result = opt.run(text_samples[:1])[0]
    assert result.history[1].new_unique == 2  # "a red cat" and "blue dog"
    assert result.history[2].new_unique == 0  # already seen: not re-scored
    texts = [normalise(t) for t, _ in result.kept]
    assert len(texts) == len(set(texts))


class MutedGenerator:
    """Replies with prose only: no usable candidate line."""

    def __init__(self):
        self.calls = 0

    def generate(self, prompts, seeds):
        self.calls += 1
        return ["I am sorry, I cannot help with that:" for _ in prompts]


def test_reply_without_candidates_keeps_previous_top_k(fake_scorer, fake_bank, text_samples):
    opt = make_optimiser(MutedGenerator(), fake_scorer, fake_bank, steps=2, keep=3, requested=5)
    result = opt.run(text_samples[:2])[0]
    assert [h.empty_reply for h in result.history] == [False, True, True]
    assert result.history[-1].best == result.history[0].best
    assert result.raw_replies == ["I am sorry, I cannot help with that:"] * 2


def test_early_stop_when_kept_set_stops_changing(fake_scorer, fake_bank, text_samples):
    generator = MutedGenerator()
    opt = make_optimiser(generator, fake_scorer, fake_bank, steps=10, keep=3, requested=5, patience=2)
    results = opt.run(text_samples)
    assert all(r.stopped_early_at == 2 for r in results)
    assert generator.calls == 2  # stopped samples are not sent to the LLM again
    assert all(len(r.history) == 3 for r in results)


def test_exploration_keeps_some_lower_ranked_candidates(fake_generator, fake_scorer, fake_bank, text_samples):
    sample = text_samples[:1]
    greedy = make_optimiser(fake_generator, fake_scorer, fake_bank, steps=0, keep=10, requested=5).run(sample)[0]
    explore = make_optimiser(fake_generator, fake_scorer, fake_bank, steps=0, keep=10, requested=5,
                             exploration=0.5).run(sample)[0]
    assert explore.kept[:5] == greedy.kept[:5]  # the top half is still the top
    assert [t for t, _ in explore.kept[5:]] != [t for t, _ in greedy.kept[5:]]
    again = make_optimiser(fake_generator, fake_scorer, fake_bank, steps=0, keep=10, requested=5,
                           exploration=0.5).run(sample)[0]
    assert again.kept == explore.kept  # seeded


def test_result_does_not_depend_on_batch_size_or_batch_mates(fake_scorer, fake_bank, text_samples):
    def run(samples, batch_size):
        opt = make_optimiser(FakeGenerator(), fake_scorer, fake_bank, steps=4, keep=5, requested=5, seed=7)
        return {r.sample_id: (r.history, r.kept) for r in opt.run_batched(samples, batch_size)}

    together = run(text_samples, batch_size=5)
    alone = run(text_samples, batch_size=1)
    assert together == alone
    shuffled = run(text_samples[::-1], batch_size=2)
    assert shuffled == together
    other_seed = make_optimiser(FakeGenerator(), fake_scorer, fake_bank, steps=4, keep=5, requested=5, seed=8)
    assert {r.sample_id: r.kept for r in other_seed.run(text_samples)} != {k: v[1] for k, v in together.items()}


def test_lower_is_better_scorers_are_minimised(fake_generator, fake_bank, text_samples):
    from tests.fakes import FakeScorer

    class Distance(FakeScorer):
        higher_is_better = False

        def similarity(self, a, b):
            return 1.0 - a @ b.T

    opt = make_optimiser(fake_generator, Distance(), fake_bank, steps=3, keep=4, requested=5)
    for result in opt.run(text_samples):
        best = [h.best_score for h in result.history]
        assert all(b2 <= b1 for b1, b2 in zip(best, best[1:]))
        assert [s for _, s in result.kept] == sorted(s for _, s in result.kept)


class CountingMismatch:
    def generate(self, prompts, seeds):
        return ["1. a cat"]


def test_generator_must_answer_every_prompt(fake_scorer, fake_bank, text_samples):
    opt = make_optimiser(CountingMismatch(), fake_scorer, fake_bank, steps=1, keep=3, requested=5)
    with pytest.raises(RuntimeError, match="1 replies for 5 prompts"):
        opt.run(text_samples)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"steps": -1}, "steps"),
        ({"keep": 0}, "keep"),
        ({"exploration": 1.0}, "exploration"),
        ({"patience": 0}, "patience"),
    ],
)
def test_invalid_options_name_the_value(options, message):
    with pytest.raises(ValueError, match=message):
        LoopOptions(**options)


def test_bank_and_embeddings_must_match(fake_generator, fake_scorer, fake_bank):
    with pytest.raises(ValueError, match="embeddings"):
        Optimiser(fake_generator, fake_scorer, get_task("image_captioning").template, fake_bank,
                  np.zeros((3, 64)), LoopOptions())


def test_sample_ids_drive_seeds_not_positions(fake_scorer, fake_bank):
    a = [Sample("x", "red cat"), Sample("y", "blue boat")]
    b = [Sample("x", "red cat"), Sample("z", "blue boat")]
    ra = make_optimiser(FakeGenerator(), fake_scorer, fake_bank, steps=3, keep=4, requested=5).run(a)
    rb = make_optimiser(FakeGenerator(), fake_scorer, fake_bank, steps=3, keep=4, requested=5).run(b)
    assert ra[0].kept == rb[0].kept
    assert ra[1].kept != rb[1].kept


class TwoObjectiveScorer:
    """A CandidateScorer: (word mismatch, length gap) to the sample's target, both minimised."""

    higher_is_better = False

    def __init__(self):
        self.calls = []

    def score(self, samples, candidates):
        self.calls.append([len(c) for c in candidates])
        out = []
        for sample, texts in zip(samples, candidates):
            target = set(sample.media.split())
            out.append(np.array([[len(set(t.split()) ^ target), abs(len(t) - len(sample.media)) / 10]
                                 for t in texts]).reshape(-1, 2))
        return out


class RecordingGenerator:
    def __init__(self):
        self.inner, self.prompts = FakeGenerator(), []

    def generate(self, prompts, seeds):
        self.prompts += prompts
        return self.inner.generate(prompts, seeds)


def test_candidate_scorer_with_two_objectives_per_sample_start_and_prompt_extras(text_samples):
    scorer, generator = TwoObjectiveScorer(), RecordingGenerator()
    opt = Optimiser(generator, scorer, get_task("text_to_image").template, [], None,
                    LoopOptions(steps=3, keep=3, requested=4, seed=2),
                    initial_texts=lambda s: [s.media.split()[0], "something else"],
                    prompt_extra=lambda s: {"init_description": s.media})
    results = opt.run(text_samples[:2])
    assert scorer.calls[0] == [2, 2]  # step 0 scored each sample's own initial candidates
    for result in results:
        best = [h.best_score for h in result.history]
        assert all(b2 <= b1 for b1, b2 in zip(best, best[1:]))  # the sum of both objectives is minimised
        assert all(isinstance(v, tuple) and len(v) == 2 for _, v in result.kept)
        assert result.score == pytest.approx(sum(result.kept[0][1]))
    assert "The description is: red cat on sofa" in generator.prompts[0]
    assert re.search(r"^\d+\.\d{3}, \d+\.\d{3}: ", generator.prompts[0], flags=re.M)


def test_scorer_must_follow_a_protocol(fake_generator):
    with pytest.raises(TypeError, match="neither"):
        Optimiser(fake_generator, object(), get_task("image_captioning").template, [], None, LoopOptions())


def test_a_file_s_seeds_come_from_its_content_never_from_its_folder(tmp_path, photo_dir, fake_generator, fake_scorer,
                                                                    fake_bank):
    """The same photos copied to two folders gained on different photos: seeds came from the path."""
    import shutil

    from mils.protocols import Sample

    photo = next(photo_dir.glob("*.jpg"))
    copies = []
    for folder in ("a", "b/deeper"):
        (tmp_path / folder).mkdir(parents=True)
        copies.append(Sample.from_path(shutil.copy(photo, tmp_path / folder / "x.jpg")))
    assert copies[0].id != copies[1].id and copies[0].seed_id == copies[1].seed_id
    one, two = (Sample(s.id, "red cat on a sofa", content=s.content) for s in copies)  # the fake scorer reads text
    runs = [make_optimiser(fake_generator, fake_scorer, fake_bank, steps=3, keep=4, requested=5).run([s])[0]
            for s in (one, two)]
    assert runs[0].history == runs[1].history and runs[0].raw_replies == runs[1].raw_replies


def test_replies_with_no_usable_line_are_one_warning_per_step(fake_scorer, fake_bank, text_samples, caplog):
    """Issue 48, item 5: the demo printed 13 warnings, one per reply; now one line per step."""
    import logging

    class Prose:  # every other sample's reply is prose about the task: no candidate in it
        def generate(self, prompts, seeds):
            return ["I think these captions are good." if n % 2 else "1. red cat\n2. blue boat"
                    for n, _ in enumerate(prompts)]

    with caplog.at_level(logging.WARNING, logger="mils.engine.loop"):
        make_optimiser(Prose(), fake_scorer, fake_bank, steps=3, keep=4, requested=5).run(text_samples[:4])
    lines = [r.getMessage() for r in caplog.records if "usable line" in r.getMessage()]
    assert lines == [f"step {s}/3: 2 of 4 replies had no usable line (those samples keep their top-K)"
                     for s in (1, 2, 3)]
