"""Scorer behaviour beyond the shared contract (tests/mils/test_component_contract.py)."""

import pytest

from mils.media import MediaError
from mils.protocols import Sample


@pytest.fixture(params=["open_clip_tiny", pytest.param("concept", marks=pytest.mark.slow)])
def scorer(request, tiny_clip_name):
    import mils.scorers  # noqa: F401
    from mils import registry

    if request.param == "open_clip_tiny":
        import torch

        torch.manual_seed(0)
        return registry.create("scorer", "open_clip", model=tiny_clip_name, pretrained=None, device="cpu")
    return registry.create("scorer", "concept")


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
