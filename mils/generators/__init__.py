"""Generator backends, registered by name (``transformers``, ``vllm``)."""

from __future__ import annotations

import logging
from pathlib import Path

from mils.engine.sampling import SamplingOptions
from mils.errors import require
from mils.generators.decode import DecodeOptions
from mils.generators.transformers_llm import TransformersGenerator
from mils.protocols import Workload
from mils.registry import register

_SAMPLING = set(SamplingOptions.model_fields)
log = logging.getLogger(__name__)


@register("generator", "transformers", extra=_SAMPLING)
def transformers_generator(model: str, cache_dir: str | Path, device: str | None = None, dtype: str = "auto",
                           kv_cache: str = "auto", cuda_graphs: bool | None = None, sync_every: int | None = None,
                           prefill_chunk: int = 512, max_batch: int | None = None, memory_fraction: float = 0.9,
                           fold_gqa: bool | None = None, reserved_gib: float | None = None,
                           **sampling) -> TransformersGenerator:
    """``sampling``: temperature, top_p, max_new_tokens (SamplingOptions' defaults otherwise). The
    decoding options (kv_cache, cuda_graphs, sync_every, prefill_chunk, max_batch, memory_fraction,
    fold_gqa, reserved_gib: mils/generators/decode.py) change speed and memory, not what is sampled."""
    decode = DecodeOptions(kv_cache=kv_cache, cuda_graphs=cuda_graphs, sync_every=sync_every,
                           prefill_chunk=prefill_chunk, max_batch=max_batch, memory_fraction=memory_fraction,
                           fold_gqa=fold_gqa, reserved_gib=reserved_gib)
    return TransformersGenerator.load(model, cache_dir, SamplingOptions(**sampling), device=device, dtype=dtype,
                                      decode=decode)


@register("generator", "vllm")
def vllm_generator(model: str, cache_dir: str | Path, device: str | None = None, dtype: str = "auto",
                   server: str | None = None, served_name: str = "mils", workload: Workload | None = None,
                   **options):
    """``options``: the sampling settings, and anything else goes to vLLM's engine. vLLM in this
    environment runs in-process; otherwise the server of ``make vllm``'s environment is started on
    loopback for this run. ``server``: the URL of a vLLM server that already runs (its model served
    as ``served_name``). An engine started here takes its context from ``workload`` (the run's
    longest prompt plus the reply) and, on a CPU, an explicit KV cache for every prompt in flight
    (``max_model_len`` and ``kv_cache_gib`` in the options fix either; see vllm_memory)."""
    from mils.generators.vllm_server import VLLMServer, VLLMServerGenerator, vllm_python

    sampling = SamplingOptions(**{k: v for k, v in options.items() if k in _SAMPLING})
    engine_args = {k: v for k, v in options.items() if k not in _SAMPLING}
    if server:
        if engine_args:
            log.warning("generator.options %s are engine options: a running server (%s) keeps its own", engine_args, server)
        if sampling.stop_tokens == "official":
            log.warning("stop_tokens: official is an engine setting; the server at %s stops where it was started to "
                        "(start it with --generation-config vllm for the MILS code's end tokens)", server)
        return VLLMServerGenerator(server, sampling, served_name)
    try:
        import vllm  # noqa: F401  (here: the engine runs in-process)
        python = None
    except ImportError:
        python = vllm_python()
        if python is None:
            from mils.generators.vllm_llm import VLLM_INSTALL

            require("vllm", "the 'vllm' generator", VLLM_INSTALL)
    import torch

    from mils.generators.transformers_llm import resolve_model_dir
    from mils.generators.vllm_llm import engine_arguments
    from mils.generators.vllm_memory import available_gib, check_fits, plan, sized

    on_gpu = torch.cuda.is_available()
    model_dir = resolve_model_dir(model, Path(cache_dir).expanduser())
    engine = engine_arguments({"dtype": dtype, **engine_args}, on_gpu, sampling.stop_tokens)
    memory = plan(model_dir, workload, sampling.max_new_tokens, engine["dtype"], on_gpu, engine)
    check_fits(memory, None if on_gpu else available_gib())
    log.info("vLLM engine: %s", memory.describe())
    engine = sized(engine, memory)
    if python is not None:
        process = VLLMServer(python, model_dir, engine, Path(cache_dir).expanduser() / "vllm-logs", served_name,
                             plan=memory.describe())
        return VLLMServerGenerator(process.url, sampling, served_name, server=process)
    from mils.generators.vllm_llm import VLLMGenerator

    return VLLMGenerator(model_dir, sampling, **engine)


@register("generator", "openai", extra=_SAMPLING)
def openai_generator(model: str, cache_dir: str | Path, base_url: str, api_key_env: str | None = None,
                     system_prompt: str | None = None, max_concurrency: int | None = None, max_retries: int = 5,
                     timeout: float = 600.0, reasoning_tag: str | None = "think", device: str | None = None,
                     dtype: str = "auto", **sampling):
    """Any OpenAI-compatible chat endpoint (``base_url``, e.g. ``http://127.0.0.1:8000/v1``) serving
    ``model``. ``api_key_env``: the environment variable holding the key (never the key itself).
    ``system_prompt``: none by default, as in the paper. ``reasoning_tag``: a reasoning model's
    ``<think>...</think>`` is removed before parsing (None: kept). ``device``/``dtype`` do not apply.
    ``max_concurrency``: requests at once (None: 256 on loopback, 8 elsewhere; openai_api.default_concurrency)."""
    from mils.generators.openai_api import OpenAIGenerator, api_key

    if sampling.get("stop_tokens") == "official":
        log.warning("stop_tokens: official is an engine setting; the endpoint %s stops where its server decides", base_url)
    return OpenAIGenerator(base_url, model, SamplingOptions(**sampling), api_key(api_key_env), system_prompt,
                           max_concurrency, max_retries, timeout, reasoning_tag=reasoning_tag)


from mils.exports import lazy  # noqa: E402

__getattr__, __dir__, __all__ = lazy(__name__, {  # the public names, by module
    "mils.generators": "transformers_generator vllm_generator",  # defined above
    "mils.engine.sampling": "SamplingOptions",
    "mils.generators.decode": "BatchDecoder CudaGraphs DecodeOptions SCORER_GIB rows_that_fit",
    "mils.generators.openai_api": "OpenAIGenerator",
    "mils.generators.sampler": "TokenSampler",
    "mils.generators.transformers_llm": "TransformersGenerator package_file",
})
