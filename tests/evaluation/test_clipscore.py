import numpy as np
import pytest
import torch

from evaluation.clipscore import PREFIX, W, clip_scores
from mils.protocols import Sample


@pytest.fixture
def tiny_scorer(tiny_clip_name):
    from mils.scorers.open_clip_scorer import open_clip_scorer

    torch.manual_seed(0)
    return open_clip_scorer(tiny_clip_name, pretrained=None, device="cpu")


def test_clipscore_formula_on_a_tiny_model(tiny_scorer, photo_dir):
    samples = [Sample.from_path(p) for p in sorted(photo_dir.glob("*.jpg"))]
    captions = ["a cat", "a cup of coffee", "a rocket"]
    refs = [["a tabby cat", "a cat lying down"], ["coffee"], ["a rocket on a pad", "a launch"]]
    table, corpus = clip_scores(tiny_scorer, samples, captions, refs, resamples=100)

    img = tiny_scorer.embed_samples(samples)
    cap = tiny_scorer.embed_texts([PREFIX + c for c in captions])
    expected = W * np.clip((img * cap).sum(-1), 0, None)
    np.testing.assert_allclose(table["CLIPScore"].to_numpy(), expected, rtol=1e-5)
    for i, r in enumerate(refs):
        ref_sim = max(float((tiny_scorer.embed_texts([PREFIX + x for x in r]) @ cap[i]).max()), 0)
        c = expected[i]
        hm = 2 * c * ref_sim / (c + ref_sim) if c + ref_sim > 0 else 0.0
        assert table["RefCLIPScore"].iloc[i] == pytest.approx(hm, rel=1e-5)
    assert corpus["CLIPScore"].value == pytest.approx(expected.mean(), rel=1e-6)
    assert corpus["CLIPScore"].low <= corpus["CLIPScore"].value <= corpus["CLIPScore"].high


def test_negative_similarity_is_clipped_to_zero():
    class Opposite:
        higher_is_better = True

        def fingerprint(self):
            return "opposite"

        def embed_samples(self, samples):
            return np.array([[1.0, 0.0]] * len(samples), np.float32)

        def embed_texts(self, texts):
            return np.array([[-1.0, 0.0]] * len(texts), np.float32)

        def similarity(self, a, b):
            return a @ b.T

    table, _ = clip_scores(Opposite(), [Sample("a", None)], ["x"], [["y"]], resamples=10)
    assert table["CLIPScore"].iloc[0] == 0.0 and table["RefCLIPScore"].iloc[0] == 0.0


def test_lengths_must_match(tiny_scorer):
    with pytest.raises(ValueError, match="2 samples but 1 captions"):
        clip_scores(tiny_scorer, [Sample("a", None), Sample("b", None)], ["x"])
