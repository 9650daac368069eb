"""Semantics of the offline concept scorer on real photos (real EfficientNet-lite0 + MiniLM)."""

import pytest

from mils.protocols import Sample

pytestmark = pytest.mark.slow


def test_concept_scorer_matches_photos_to_their_objects(photo_dir):
    from mils.scorers.concept import concept_scorer

    scorer = concept_scorer()
    names = ["chelsea", "coffee", "rocket"]
    samples = [Sample.from_path(photo_dir / f"{n}.jpg") for n in names]
    captions = ["a tabby cat lying down", "a cup of espresso on a saucer", "a space rocket on the launch pad"]
    sims = scorer.similarity(scorer.embed_samples(samples), scorer.embed_texts(captions))
    # each photo prefers its own caption, and each caption its own photo
    assert list(sims.argmax(axis=1)) == [0, 1, 2]
    assert list(sims.argmax(axis=0)) == [0, 1, 2]
