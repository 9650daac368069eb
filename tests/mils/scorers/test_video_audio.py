import numpy as np
import pytest
import torch

from mils.media import MediaError
from mils.protocols import Sample
from tests.conftest import write_audio, write_video


@pytest.fixture
def video(tmp_path):
    return write_video(tmp_path / "clip.mp4", n_frames=30)


def test_frame_averaging_is_the_normalised_mean_of_frame_embeddings(tiny_clip_name, video):
    from mils.media import sample_frames
    from mils.scorers.video import video_frames_scorer

    torch.manual_seed(0)
    scorer = video_frames_scorer({"name": "open_clip", "options": {"model": tiny_clip_name, "pretrained": None,
                                                                   "device": "cpu"}}, frames=4)
    emb = scorer.embed_samples([Sample("v", video)])
    frames = [Sample(f"f{i}", f) for i, f in enumerate(sample_frames(video, 4))]
    mean = scorer.image_scorer.embed_samples(frames).mean(axis=0)
    np.testing.assert_allclose(emb[0], mean / np.linalg.norm(mean), rtol=1e-5, atol=1e-6)
    assert scorer.fingerprint() == scorer.image_scorer.fingerprint()  # bank cache shared with images
    assert scorer.similarity(emb, scorer.embed_texts(["a", "b c"])).shape == (1, 2)


def test_xclip_scorer_on_a_tiny_model(tiny_xclip_dir, video):
    from mils.scorers.video import xclip_scorer

    scorer = xclip_scorer(str(tiny_xclip_dir), device="cpu")
    assert scorer.frames == 4  # from the model's config
    emb, text = scorer.embed_samples([Sample("v", video)]), scorer.embed_texts(["a cat", "a dog", "a cat"])
    assert emb.shape == (1, 32) and text.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(text[0], text[2], atol=1e-6)


def test_clap_scorer_on_a_tiny_model(tiny_clap_dir, tmp_path):
    from mils.scorers.audio import clap_scorer

    scorer = clap_scorer(str(tiny_clap_dir), device="cpu")
    audio = write_audio(tmp_path / "tone.wav", seconds=1.5, rate=44100)
    emb = scorer.embed_samples([Sample("a", audio), Sample("b", write_audio(tmp_path / "m.wav", 0.5, 8000, 1))])
    assert emb.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    (tmp_path / "broken.wav").write_bytes(b"nope")
    with pytest.raises(MediaError, match="broken.wav"):
        scorer.embed_samples([Sample("x", tmp_path / "broken.wav")])


def test_imagebind_is_import_guarded():
    from mils.scorers.audio import imagebind_scorer

    with pytest.raises(ImportError, match="imagebind-packaged"):
        imagebind_scorer()
