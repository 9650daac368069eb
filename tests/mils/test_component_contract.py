"""The contract every registered component passes (diffusers' shared pipeline tests, in spirit).

Two-tower scorers: shapes and dtype, a repeated text scores the same, embedding in chunks equals
embedding at once, a sample's embedding does not depend on its batch mates, a stable fingerprint.
Candidate scorers: one score per candidate, deterministic, independent of the other samples.
Generators: one reply per prompt, deterministic per seed, independent of batch mates. Every
component registered by the package appears here (a test checks the list is complete).
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from mils import registry
from mils.protocols import CandidateScorer, Sample, Scorer, whole_lines
from tests.conftest import write_audio, write_video

TEXTS = ["a photo of a cat", "a cup of coffee", "a rocket", "a photo of a cat"]
NOT_RUN = {"imagebind": "its weights cannot be fetched offline; import guard tested in test_video_audio.py"}


def _open_clip(tiny_clip_name):
    return {"model": tiny_clip_name, "pretrained": None, "device": "cpu"}


@pytest.fixture
def two_tower(request, tiny_clip_name, photo_dir, tmp_path):
    """(scorer, samples) for each registered two-tower scorer, on tiny or offline models."""
    import mils.scorers  # noqa: F401

    torch.manual_seed(0)
    photos = [Sample.from_path(p) for p in sorted(photo_dir.glob("*.jpg"))]
    videos = [Sample(f"v{i}", write_video(tmp_path / f"v{i}.mp4", n_frames=12 + 6 * i, step=20 * i + 5))
              for i in range(3)]
    if request.param == "open_clip":
        return registry.create("scorer", "open_clip", **_open_clip(tiny_clip_name)), photos
    if request.param == "concept":
        return registry.create("scorer", "concept"), photos
    if request.param == "video_frames":
        image = {"name": "open_clip", "options": _open_clip(tiny_clip_name)}
        return registry.create("scorer", "video_frames", image_scorer=image, frames=4), videos
    if request.param == "xclip":
        return registry.create("scorer", "xclip", model=str(request.getfixturevalue("tiny_xclip_dir")),
                               device="cpu"), videos
    clips = [Sample(f"a{i}", write_audio(tmp_path / f"a{i}.wav", seconds=0.5 + i / 2, rate=16000 * (i + 1)))
             for i in range(3)]
    return registry.create("scorer", "clap", model=str(request.getfixturevalue("tiny_clap_dir")), device="cpu"), clips


TWO_TOWER = ["open_clip", pytest.param("concept", marks=pytest.mark.slow), "video_frames", "xclip", "clap"]


@pytest.mark.parametrize("two_tower", TWO_TOWER, indirect=True)
def test_two_tower_scorer_contract(two_tower):
    scorer, samples = two_tower
    assert isinstance(scorer, Scorer) and scorer.higher_is_better in (True, False)
    s_emb, t_emb = scorer.embed_samples(samples), scorer.embed_texts(TEXTS)
    assert s_emb.shape[0] == len(samples) and t_emb.shape[0] == len(TEXTS)
    assert s_emb.dtype == np.float32 and t_emb.dtype == np.float32
    sims = scorer.similarity(s_emb, t_emb)
    assert sims.shape == (len(samples), len(TEXTS)) and np.isfinite(sims).all()
    np.testing.assert_allclose(sims[:, 0], sims[:, 3], atol=1e-5)  # the same text, the same score
    np.testing.assert_allclose(np.concatenate([scorer.embed_texts(TEXTS[:2]), scorer.embed_texts(TEXTS[2:])]),
                               t_emb, atol=1e-5)  # the bank is encoded in chunks
    alone = np.concatenate([scorer.embed_samples([s]) for s in samples])
    np.testing.assert_allclose(alone, s_emb, atol=1e-5)  # batch mates do not matter
    assert isinstance(scorer.fingerprint(), str) and scorer.fingerprint() == scorer.fingerprint()


@pytest.fixture
def candidate_scorer(request, tmp_path, photo_dir):
    import mils.scorers  # noqa: F401

    torch.manual_seed(0)
    if request.param == "pickscore_t2i":
        scorer = registry.create("scorer", "pickscore_t2i", pipeline=str(request.getfixturevalue("tiny_sd_dir")),
                                 reward=str(request.getfixturevalue("tiny_pickscore_dir")), steps=2, guidance=None,
                                 size=32, device="cpu")
        return scorer, [Sample("p0", "a red cat on a sofa"), Sample("p1", "two boats on a river")]
    if request.param == "with_judge":  # two tiny CLIPs of different random weights: a scorer and a judge
        tiny = {"name": "open_clip", "options": _open_clip(request.getfixturevalue("tiny_clip_name"))}
        scorer = registry.create("scorer", "with_judge", main_scorer=tiny, judge_scorer=tiny, judge_weight=0.5)
        return scorer, [Sample.from_path(p) for p in sorted(photo_dir.glob("*.jpg"))[:2]]
    scorer = registry.create("scorer", "style_transfer", editor=str(request.getfixturevalue("tiny_pix2pix_dir")),
                             steps=2, device="cpu", vgg_size=64, size=64)
    photos = sorted(photo_dir.glob("*.jpg"))
    return scorer, [Sample(f"s{i}", {"content": str(photos[i]), "style": str(photos[-1 - i])}) for i in range(2)]


@pytest.mark.parametrize("candidate_scorer", ["pickscore_t2i", "style_transfer", "with_judge"], indirect=True)
def test_candidate_scorer_contract(candidate_scorer):
    scorer, samples = candidate_scorer
    assert isinstance(scorer, CandidateScorer)
    candidates = [["make it brighter", "a sunny day"], ["in the style of a pencil drawing"]]
    together = scorer.score(samples, candidates)
    assert [len(np.asarray(v)) for v in together] == [2, 1]
    assert all(np.isfinite(np.asarray(v, float)).all() for v in together)
    again = scorer.score(samples, candidates)  # deterministic (cached or recomputed with the same seed)
    for a, b in zip(together, again):
        np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=1e-5)
    alone = scorer.score(samples[1:], candidates[1:])[0]
    np.testing.assert_allclose(np.asarray(alone, float), np.asarray(together[1], float), rtol=1e-4)


@pytest.fixture(scope="module")
def tiny_llm(smollm2):
    """A 1-layer random Llama with SmolLM2's real tokenizer and chat template, in the real generator."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from mils.engine.sampling import SamplingOptions
    from mils.generators.transformers_llm import TransformersGenerator

    torch.manual_seed(0)
    tokenizer = smollm2.tokenizer
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, eos_token_id=tokenizer.eos_token_id)
    return TransformersGenerator(LlamaForCausalLM(config), tokenizer, SamplingOptions(max_new_tokens=12))


def _fake_vllm(monkeypatch):
    """A stand-in ``vllm`` module: an LLM whose chat() records its requests and echoes them."""
    requests = []

    class SamplingParams:
        def __init__(self, **kwargs):
            self.__dict__.update(kwargs)

    class LLM:
        def __init__(self, model, **engine_args):
            self.model, self.engine_args = model, engine_args

        def chat(self, messages, params, use_tqdm=True):
            requests.append((messages, params))
            def output(message, param):  # vLLM's RequestOutput: prompt_token_ids, outputs[0].text/token_ids
                text = f"{message[0]['content'][:12]}|seed={param.seed}"
                cut = "cut off" in message[0]["content"]  # a reply that hit the token limit
                return types.SimpleNamespace(prompt_token_ids=list(range(len(message[0]["content"].split()))),
                                             outputs=[types.SimpleNamespace(
                                                 text=f"1. first line\n2. second li{text}" if cut else text,
                                                 token_ids=[1] * len(text), finish_reason="length" if cut else "stop")])
            return [output(m, p) for m, p in zip(messages, params)]

    module = types.ModuleType("vllm")
    module.LLM, module.SamplingParams = LLM, SamplingParams
    monkeypatch.setitem(sys.modules, "vllm", module)
    return requests


@pytest.fixture(params=["transformers", "openai"])
def generator(request):
    """The real backends this environment can run: transformers on a tiny real-class model, and the
    openai client (its real request path) against a loopback endpoint. vLLM's contract runs on real
    vLLM in its own environment (tests/vllm/test_vllm_real.py); the tests' fake generator is no backend."""
    import mils.generators  # noqa: F401

    if request.param == "openai":  # a loopback OpenAI-compatible endpoint (tests/openai_fake.py)
        from tests.openai_fake import FakeEndpoint

        endpoint = FakeEndpoint()
        request.addfinalizer(endpoint.close)
        return registry.create("generator", "openai", model="fake-llm", cache_dir="/unused", base_url=endpoint.base_url)
    return request.getfixturevalue("tiny_llm")


@pytest.mark.slow
def test_generator_contract(generator):
    prompts = ["Describe a cat.", "Describe a much longer scene with a dog, a ball and some grass.", "Hi"]
    replies = generator.generate(prompts, [11, 22, 33])
    assert len(replies) == len(prompts) and all(isinstance(r, str) for r in replies)
    assert generator.generate(prompts, [11, 22, 33]) == replies  # deterministic per seed
    assert generator.generate(prompts[1:2], [22]) == replies[1:2]  # batch mates do not matter


@pytest.mark.slow
def test_vllm_requests_carry_the_sampling_settings_and_a_seed_per_prompt(monkeypatch, tiny_llama_dir):
    import mils.generators  # noqa: F401

    requests = _fake_vllm(monkeypatch)
    generator = registry.create("generator", "vllm", model=tiny_llama_dir, cache_dir="/unused", temperature=0.7,
                                top_p=0.8, max_new_tokens=64, max_model_len=2048)
    assert generator.llm.engine_args["max_model_len"] == 2048  # engine args reach vLLM
    replies = generator.generate(["a", "b"], [5, 2**40 + 7])
    messages, params = requests[-1]
    assert messages == [[{"role": "user", "content": "a"}], [{"role": "user", "content": "b"}]]
    assert [(p.temperature, p.top_p, p.max_tokens) for p in params] == [(0.7, 0.8, 64)] * 2
    assert [p.seed for p in params] == [5, (2**40 + 7) % 2**31]  # per-request seeds in vLLM's range
    assert [r.usage.prompt for r in replies] == [1, 1]  # token counts from vLLM's outputs
    cut = generator.generate(["cut off here"], [1])[0]
    assert cut.cut and whole_lines(cut) == "1. first line"  # the half-written line is marked, then dropped
    assert not hasattr(params[0], "top_k")  # vLLM's own default (none) unless asked

    official = registry.create("generator", "vllm", model=tiny_llama_dir, cache_dir="/unused", top_k=50,
                               stop_tokens="official", max_model_len=2048)
    official.generate(["a"], [1])
    assert requests[-1][1][0].top_k == 50  # the paper's sampling: top-k 50 before top-p
    assert official.llm.engine_args["generation_config"] == "vllm"  # ends at the tokenizer's end token only


@pytest.mark.slow
def test_vllm_gets_the_resolved_model_whole_prefills_and_the_run_s_context_and_cache(monkeypatch, tiny_llama_dir):
    import mils.generators  # noqa: F401
    from mils.components.build import build_generator
    from mils.components.plan import plan_run
    from mils.config.run_config import build_config
    from mils.generators import transformers_llm, vllm_llm

    _fake_vllm(monkeypatch)
    resolved = []
    monkeypatch.setattr(transformers_llm, "resolve_model_dir",
                        lambda model, cache: resolved.append((model, cache)) or tiny_llama_dir)
    config = build_config("offline", {"generator": {"backend": "vllm"}, "loop": {"keep": 5}, "batch_size": 4,
                                      "cache_dir": "/c"})
    plan = plan_run(config)
    generator = build_generator(plan.generator, plan.workload)
    assert generator.llm.model == tiny_llama_dir and resolved == [(config.generator.model, Path("/c"))]
    engine = generator.llm.engine_args
    # the context: the run's longest prompt (5 shown candidates of <= 77 words) plus its 200 new tokens
    assert 5 * (8 + 2 * 77) + 200 < engine["max_model_len"] < 5 * (8 + 2 * 77) + 200 + 600
    # the CPU cache: that context for each of the 4 prompts in flight, an explicit size
    per_token = 2 * 2 * 2 * 16 * 4  # k+v, 2 layers, 2 kv heads, head dim 16, float32
    assert engine["kv_cache_memory_bytes"] >= 4 * engine["max_model_len"] * per_token
    assert "gpu_memory_utilization" not in engine
    bigger = build_generator(plan.generator, plan_run(config.model_copy(update={"batch_size": 8})).workload)
    assert bigger.llm.engine_args["kv_cache_memory_bytes"] > engine["kv_cache_memory_bytes"]
    # CPU vLLM crashes on seeded requests whose prefill is chunked: unless told otherwise, none is
    # (and no torch.compile, whose warm-up takes minutes on a CPU; float32 where vLLM would pick bfloat16)
    cpu = {"max_num_batched_tokens": 16384, "enforce_eager": True, "dtype": "float32"}
    assert {k: engine[k] for k in cpu} == cpu
    assert vllm_llm.engine_arguments({"max_num_batched_tokens": 4096, "tensor_parallel_size": 2, "dtype": "bfloat16"},
                                     on_gpu=False) == {**cpu, "max_num_batched_tokens": 4096, "tensor_parallel_size": 2,
                                                       "dtype": "bfloat16"}
    assert vllm_llm.engine_arguments({"gpu_memory_utilization": 0.8}, on_gpu=True) == {"gpu_memory_utilization": 0.8}


def test_every_registered_component_is_under_contract():
    import mils.generators  # noqa: F401
    import mils.scorers  # noqa: F401

    scorers = {p if isinstance(p, str) else p.values[0] for p in TWO_TOWER} | {"pickscore_t2i", "style_transfer", "with_judge"}
    def ours(kind):  # registered by the package, not by test plugins
        return {n for n in registry.known(kind) if registry.get_factory(kind, n).__module__.startswith("mils.")}

    assert ours("scorer") - set(NOT_RUN) == scorers
    assert ours("generator") == {"transformers", "vllm", "openai"}
