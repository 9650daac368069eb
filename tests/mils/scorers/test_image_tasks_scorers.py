import numpy as np
import pytest
from PIL import Image

from mils.protocols import Sample


@pytest.fixture
def t2i_scorer(tiny_sd_dir, tiny_pickscore_dir):
    from mils.scorers.text_to_image import pickscore_t2i_scorer

    return pickscore_t2i_scorer(pipeline=str(tiny_sd_dir), reward=str(tiny_pickscore_dir), steps=2, guidance=None,
                                size=32, device="cpu")


def test_renders_are_cached_by_prompt(t2i_scorer):
    renderer = t2i_scorer.renderer
    first = t2i_scorer.score([Sample("p", "a red cat")], [["a red cat on a mat", "a blue dog"]])[0]
    assert renderer.renders == 2
    again = t2i_scorer.score([Sample("p", "a red cat")], [["a blue dog", "a red cat on a mat", "a new one"]])[0]
    assert renderer.renders == 3  # only the new prompt was rendered
    np.testing.assert_allclose(again[:2], first[::-1], rtol=1e-5)
    # same seed for every candidate: re-rendering a prompt from scratch gives the same image
    fresh = renderer._call(["a blue dog"])[0]
    np.testing.assert_array_equal(np.asarray(fresh), np.asarray(renderer.cache["a blue dog"]))


def test_pickscore_target_is_the_original_prompt(t2i_scorer):
    seen = []
    reward = t2i_scorer.reward

    def spy(prompt, images):
        seen.append(prompt)
        return reward(prompt, images)

    t2i_scorer.reward = spy
    t2i_scorer.score([Sample("p", "the ORIGINAL prompt")], [["rewrite one", "rewrite two"]])
    assert seen == ["the ORIGINAL prompt"]


def test_gram_style_distance_semantics():
    from skimage import data

    from mils.scorers.style import StyleDistance, VGGFeatures

    vgg = VGGFeatures(size=96)
    brick = np.asarray(Image.fromarray(data.brick()).convert("RGB"))
    grass = Image.fromarray(data.grass()).convert("RGB")
    style = Image.fromarray(brick[:256, :256])
    same_texture = Image.fromarray(brick[256:, 256:])
    content = Image.fromarray(data.coffee())
    distance = StyleDistance(vgg, style, content)
    scores = distance([style, same_texture, grass, content])
    assert scores[0, 0] == pytest.approx(0.0, abs=1e-6)  # the style image to itself
    assert scores[0, 0] < scores[1, 0] < scores[2, 0]  # same texture elsewhere < a different texture
    assert scores[3, 0] == pytest.approx(1.0, rel=1e-4)  # normalised: the unedited content is 1.0
    assert scores[3, 1] == pytest.approx(0.0, abs=1e-6)  # the content image has no content loss
