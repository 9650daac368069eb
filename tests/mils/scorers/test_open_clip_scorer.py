import pytest
import torch

from mils.scorers.open_clip_scorer import open_clip_scorer


def test_random_weights_get_a_weight_fingerprint(tiny_clip_name):
    torch.manual_seed(0)
    a = open_clip_scorer(tiny_clip_name, pretrained=None, device="cpu")
    torch.manual_seed(0)
    b = open_clip_scorer(tiny_clip_name, pretrained=None, device="cpu")
    torch.manual_seed(1)
    c = open_clip_scorer(tiny_clip_name, pretrained=None, device="cpu")
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_local_checkpoint_is_loaded_and_fingerprinted(tiny_clip_name, tmp_path):
    torch.manual_seed(0)
    source = open_clip_scorer(tiny_clip_name, pretrained=None, device="cpu")
    path = tmp_path / "tiny.pt"
    torch.save(source.model.state_dict(), path)
    loaded = open_clip_scorer(tiny_clip_name, pretrained=str(path), device="cpu")
    assert loaded.fingerprint() == source.fingerprint()  # the same weights, wherever they were loaded from
    texts = ["a cat", "a dog"]
    torch.testing.assert_close(torch.from_numpy(loaded.embed_texts(texts)), torch.from_numpy(source.embed_texts(texts)))


def test_missing_checkpoint_is_named(tiny_clip_name, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        open_clip_scorer(tiny_clip_name, pretrained=str(tmp_path / "nope.pt"))
