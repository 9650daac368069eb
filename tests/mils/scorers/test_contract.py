"""The contract every registered scorer must pass (tiny or real models, no hub)."""

import numpy as np
import pytest

from mils.media import MediaError
from mils.protocols import Sample, Scorer


@pytest.fixture(params=["open_clip_tiny", pytest.param("concept", marks=pytest.mark.slow)])
def scorer(request, tiny_clip_name):
    import mils.scorers  # noqa: F401
    from mils import registry

    if request.param == "open_clip_tiny":
        import torch

        torch.manual_seed(0)
        return registry.create("scorer", "open_clip", model=tiny_clip_name, pretrained=None, device="cpu")
    return registry.create("scorer", "concept")


def test_scorer_contract(scorer, photo_dir):
    assert isinstance(scorer, Scorer)
    samples = [Sample.from_path(p) for p in sorted(photo_dir.glob("*.jpg"))]
    texts = ["a photo of a cat", "a cup of coffee", "a rocket", "a photo of a cat"]
    s_emb, t_emb = scorer.embed_samples(samples), scorer.embed_texts(texts)
    assert s_emb.shape[0] == len(samples) and t_emb.shape[0] == len(texts)
    assert s_emb.dtype == np.float32 and t_emb.dtype == np.float32
    sims = scorer.similarity(s_emb, t_emb)
    assert sims.shape == (len(samples), len(texts)) and np.isfinite(sims).all()
    np.testing.assert_allclose(sims[:, 0], sims[:, 3], atol=1e-5)  # same text, same score
    # embedding in parts equals embedding at once (the bank is encoded in chunks)
    np.testing.assert_allclose(np.concatenate([scorer.embed_texts(texts[:2]), scorer.embed_texts(texts[2:])]),
                               t_emb, atol=1e-5)
    assert isinstance(scorer.fingerprint(), str) and scorer.fingerprint()


def test_fingerprint_follows_the_weights(tiny_clip_name):
    """The bank-embedding cache is keyed by the fingerprint: other weights, another key."""
    import torch

    import mils.scorers  # noqa: F401
    from mils import registry

    def build(seed):
        torch.manual_seed(seed)
        return registry.create("scorer", "open_clip", model=tiny_clip_name, pretrained=None, device="cpu")

    assert build(0).fingerprint() == build(0).fingerprint()
    assert build(0).fingerprint() != build(1).fingerprint()


def test_unreadable_image_is_named(scorer, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(MediaError, match="broken.jpg"):
        scorer.embed_samples([Sample.from_path(bad)])
    with pytest.raises(MediaError, match="missing.png"):
        scorer.embed_samples([Sample.from_path(tmp_path / "missing.png")])
