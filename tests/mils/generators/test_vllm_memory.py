"""vLLM's memory is sized from the run: the context from the longest prompt the loop can build, the
CPU KV cache from that context times the prompts in flight; never from the memory that is free."""

import math

import pytest

from mils.errors import InputError
from mils.generators import vllm_memory
from mils.generators.vllm_memory import EnginePlan, check_fits, engine_error, plan, sized
from mils.protocols import Workload


def _workload(lines=10, words=77, in_flight=8):
    return Workload("Describe the image. Here are some descriptions:\n\nWrite 10 more.", lines, words, in_flight)


@pytest.mark.slow
def test_the_context_is_the_longest_prompt_plus_the_reply_and_the_cpu_cache_holds_every_prompt_in_flight(
        tiny_llama_dir, smollm2):
    tokenizer = smollm2.tokenizer
    workload = _workload()
    engine = plan(tiny_llama_dir, workload, max_new_tokens=200, dtype="auto", on_gpu=False, engine_args={})
    frame = len(tokenizer.apply_chat_template([{"role": "user", "content": workload.frame}], tokenize=True,
                                              add_generation_prompt=True, return_dict=False))
    assert engine.max_model_len == frame + 10 * (8 + 2 * 77) + 200
    assert engine.model_limit == 4096
    assert engine.kv_bytes_per_token == 2 * 2 * 2 * 16 * 4  # k+v, 2 layers, 2 kv heads, head dim 16, float32
    # every prompt in flight at its longest, and 10% for block rounding
    assert engine.kv_cache_bytes == math.ceil(1.1 * 512 * engine.max_model_len * 8)
    # the same run on any machine: nothing depends on the memory that is free
    assert plan(tiny_llama_dir, workload, 200, "auto", False, {}) == engine
    # capped at the model's limit; a user's max_model_len and kv_cache_gib win
    long = plan(tiny_llama_dir, _workload(lines=50, words=None), 3000, "auto", False, {})
    assert long.max_model_len == 4096
    fixed = plan(tiny_llama_dir, workload, 200, "auto", False, {"max_model_len": 1024, "kv_cache_gib": 3})
    assert (fixed.max_model_len, fixed.kv_cache_bytes) == (1024, 3 * 1024**3)
    with pytest.raises(InputError, match="more than the model's limit"):
        plan(tiny_llama_dir, workload, 200, "auto", False, {"max_model_len": 10000})
    # on a GPU the cache is gpu_memory_utilization's (the user's option); the context is still the run's
    gpu = plan(tiny_llama_dir, workload, 200, "bfloat16", True, {})
    assert gpu.kv_cache_bytes is None and gpu.max_model_len == engine.max_model_len


def test_the_cpu_cache_grows_with_the_prompts_in_flight():
    class Config:
        num_hidden_layers, num_attention_heads, num_key_value_heads, hidden_size = 30, 9, 3, 576  # SmolLM2-135M

    assert vllm_memory.kv_bytes_per_token(Config, "float32") == 46080
    assert vllm_memory.kv_bytes_per_token(Config, "bfloat16") == 23040


def test_the_engine_gets_the_planned_context_and_cache_size():
    engine = EnginePlan(2300, 8192, 46080, 8, int(2.5 * 1024**3), 0.5)
    args = sized({"enforce_eager": True, "gpu_memory_utilization": 0.1, "kv_cache_gib": 2.5}, engine)
    assert args == {"enforce_eager": True, "max_model_len": 2300, "kv_cache_memory_bytes": int(2.5 * 1024**3)}
    gpu = EnginePlan(2300, 8192, 46080, 8, None, 0.5)
    assert sized({"gpu_memory_utilization": 0.8}, gpu) == {"gpu_memory_utilization": 0.8, "max_model_len": 2300}


def test_an_engine_that_cannot_fit_is_refused_in_one_line_naming_what_to_change():
    engine = EnginePlan(8192, 8192, 46080, 64, 26 * 1024**3, 0.5)
    with pytest.raises(InputError, match=r"needs 27\.5 GiB .* has 4\.0 GiB available: lower batch_size") as err:
        check_fits(engine, available=4.0)
    assert "\n" not in str(err.value)
    check_fits(engine, available=64.0)
    check_fits(EnginePlan(8192, 8192, 46080, 64, None, 0.5), available=0.1)  # a GPU: vLLM's own check
    with pytest.raises(InputError, match="cannot hold one prompt of 8192 tokens"):
        check_fits(EnginePlan(8192, 8192, 46080 * 4, 1, 1024**3, 0.5), available=64.0)


def test_the_engine_s_own_refusal_becomes_one_line():
    log = ("INFO ... Auto set (0.34/17.59) GiB for KV cache\nTraceback (most recent call last):\n  File ...\n"
           "ValueError: To serve at least one request with the model's max seq len (8192), (0.35 GiB KV cache is "
           "needed, which is larger than the available KV cache memory (0.34 GiB). Try increasing ...\n")
    assert engine_error(log) == ("vLLM's KV cache holds 0.34 GiB, one prompt at the engine's context needs 0.35 GiB: "
                                 "raise generator.options.kv_cache_gib or lower generator.options.max_model_len")
    scarce = ("ValueError: Available memory on node 0 (0.52/17.59 GiB) on kv cache allocation is less than "
              "requested memory for kv (1.37 GiB). Decrease --kv-cache-memory-bytes, ...")
    assert engine_error(scarce).startswith("vLLM's KV cache of 1.37 GiB does not fit in the 0.52 GiB")
    assert engine_error("Traceback\nRuntimeError: first\nmore\nOSError: the last one\n") == "the last one"
    assert engine_error("nothing known here") is None
