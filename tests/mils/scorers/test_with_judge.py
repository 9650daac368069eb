"""A scorer and a judge as two objectives: GEPA-style's Pareto pool over the optimised score and a judge."""

from __future__ import annotations

import pytest

import tests.fakes  # noqa: F401  (registers fake_bow and fake_wide)
from mils.config.run_config import build_config
from mils.config.task_specs import get_task
from mils.engine.loop import LoopOptions, Optimiser
from mils.errors import InputError
from mils.registry import create
from tests.fakes import FakeGenerator

PAIR = {"main_scorer": {"name": "fake_bow"}, "judge_scorer": {"name": "fake_wide"}, "judge_weight": 2.0}


def test_each_candidate_gets_the_scorers_score_and_the_judges(text_samples):
    pair = create("scorer", "with_judge", **PAIR)
    main, judge = create("scorer", "fake_bow"), create("scorer", "fake_wide")
    texts = ["red cat on sofa", "blue boat", "a man"]
    [scores] = pair.score(text_samples[:1], [texts])
    for column, scorer, weight in ((0, main, 1.0), (1, judge, 2.0)):
        expected = scorer.similarity(scorer.embed_samples(text_samples[:1]), scorer.embed_texts(texts))[0]
        assert scores[:, column] == pytest.approx(weight * expected, abs=1e-5)
    assert pair.score(text_samples[:1], [texts])[0] == pytest.approx(scores)  # embedded once, the same again
    assert "fake-bow-64" in pair.fingerprint() and "fake-wide-20000" in pair.fingerprint()

    class Distance:
        higher_is_better = False
        fingerprint, embed_samples, embed_texts, similarity = main.fingerprint, main.embed_samples, main.embed_texts, \
            main.similarity
    from mils.scorers.with_judge import WithJudge

    with pytest.raises(InputError, match="opposite directions"):
        WithJudge(main, Distance())


def test_gepa_keeps_a_pareto_pool_over_the_score_and_the_judge(fake_bank, text_samples):
    from mils.engine.strategies.gepa import Gepa, dominates

    pair = create("scorer", "with_judge", **PAIR)
    options = LoopOptions(steps=3, keep=6, requested=5, strategy="gepa", strategy_options={"brevity": False})
    results = Optimiser(FakeGenerator(), pair, get_task("image_captioning").template, fake_bank, None,
                        options).run(text_samples[:2])
    for r in results:
        assert all(isinstance(v, tuple) and len(v) == 2 for _, v in r.kept)  # both objectives kept and shown
        points = [Gepa(brevity=False).objectives(t, v, True) for t, v in r.kept]
        dominated = [any(dominates(q, p) for q in points) for p in points]
        assert r.kept[0][1] == max((v for _, v in r.kept), key=sum)  # the best sum leads: the run's caption
        assert dominated[1:] == sorted(dominated[1:])  # then the pool no candidate beats on both, then the rest
        assert any(not d for d in dominated[1:])  # the pool is more than the best


def test_the_pair_is_checked_when_the_config_is_read():
    config = build_config("offline", {"scorer": {"name": "with_judge", "options": {
        "main_scorer": {"name": "concept"}, "judge_scorer": {"name": "open_clip", "options": {"model": "ViT-B-32"}}}}})
    assert config.scorer.name == "with_judge"
    from mils.registry import UnknownComponentError

    with pytest.raises(UnknownComponentError, match="Did you mean 'open_clip'"):  # before any model loads
        build_config("offline", {"scorer": {"name": "with_judge", "options": {
            "main_scorer": {"name": "concept"}, "judge_scorer": {"name": "open_clipp"}}}})
