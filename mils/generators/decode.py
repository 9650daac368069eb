"""The transformers backend's decoding loop: batched, each row sampled from its own seed, made for
the GPU and unchanged in what it returns on the CPU.

- **KV slots**: keys and values are preallocated per layer (``[rows, kv heads, prompt + reply,
  head dim]``) and written in place at a position the device holds; the attention mask is ours
  (4-D, additive), so no transformers mask code runs per token. Models whose layers are not all
  full attention (sliding windows, hybrids) keep transformers' ``DynamicCache`` (``kv_cache: hf``).
- **No host wait per token**: tokens, finished flags and the step counter live on the device; the
  host reads the flags every ``sync_every`` tokens (rows that finished in between decode padding).
- **Grouped-query attention without copies**: transformers' SDPA path copies the whole KV cache
  once per query head (``repeat_kv``: 4x for Llama-3.1-8B) on every step that has a mask; on a GPU
  the decode step folds the query heads that share a KV head into the query length instead.
- **CUDA graphs**: on a GPU one decode step (forward, sampling, bookkeeping) is captured once per
  batch and replayed; a capture that fails falls back to eager steps, with a warning.
- **Prefill in chunks** of ``prefill_chunk`` positions, so activation memory is bounded.
- **Rows per forward** from the model (KV bytes per token x (longest prompt + reply)) and the
  device's *total* memory, never from what happens to be free; ``max_batch`` overrides.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Callable, Literal, Sequence

import torch

from mils.errors import InputError
from mils.generators.sampler import Rng, TokenSampler, counter_uniforms, generator_uniforms, split_seeds

log = logging.getLogger(__name__)

try:  # transformers' cache base class (the model only calls ``update`` on it)
    from transformers.cache_utils import Cache, DynamicCache
except ImportError:  # pragma: no cover  (transformers is a dependency of the backend)
    Cache, DynamicCache = object, None


@dataclass(frozen=True)
class DecodeOptions:
    """How the transformers backend decodes (``generator.options``); none of these changes a reply."""

    kv_cache: Literal["auto", "slots", "hf"] = "auto"  # auto: slots for plain full-attention decoders
    cuda_graphs: bool | None = None  # None: on a GPU, with KV slots and rng counter
    sync_every: int | None = None  # tokens between looks at the finished flags (None: 1 on a CPU, 32 on a GPU)
    prefill_chunk: int = 512  # prompt positions per prefill forward
    max_batch: int | None = None  # rows per forward (None: sized from the model and total memory)
    memory_fraction: float = 0.9  # of the device's total memory, weights included
    reserved_gib: float | None = None  # kept for models sharing the device (None: SCORER_GIB on a GPU, 0 on a CPU)
    fold_gqa: bool | None = None  # None: on a GPU, with KV slots

    def __post_init__(self) -> None:
        if self.kv_cache not in ("auto", "slots", "hf"):
            raise InputError(f"generator.options.kv_cache is auto, slots or hf, not {self.kv_cache!r}")
        for name in ("sync_every", "max_batch", "prefill_chunk"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise InputError(f"generator.options.{name} must be a whole number >= 1, not {value!r}")
        if self.reserved_gib is not None and not 0 <= self.reserved_gib < 2**20:
            raise InputError(f"generator.options.reserved_gib must be >= 0, not {self.reserved_gib!r}")
        if not 0 < self.memory_fraction <= 1:
            raise InputError(f"generator.options.memory_fraction must be in (0, 1], not {self.memory_fraction!r}")


def _text_config(config):
    return config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config


def kv_shape(config) -> tuple[int, int, int]:
    """(layers, KV heads, head dim) of a decoder's config."""
    text = _text_config(config)
    heads = text.num_attention_heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
    return text.num_hidden_layers, getattr(text, "num_key_value_heads", None) or heads, head_dim


def kv_bytes_per_token(config, dtype: torch.dtype) -> int:
    """Bytes of keys and values one token holds across all layers (Llama-3.1-8B in bf16: 128 KiB)."""
    layers, kv_heads, head_dim = kv_shape(config)
    return 2 * layers * kv_heads * head_dim * torch.empty(0, dtype=dtype).element_size()


def slots_supported(config) -> bool:
    """Plain decoders whose every layer attends to the whole context (Llama, Qwen2, SmolLM ...)."""
    text = _text_config(config)
    types = getattr(text, "layer_types", None)
    if types is not None and any(t != "full_attention" for t in types):
        return False
    window = getattr(text, "sliding_window", None)
    return window is None or getattr(text, "use_sliding_window", True) is False


def total_memory(device: torch.device) -> int:
    """The device's total memory in bytes (a GPU's, or the machine's RAM): never what is free now."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


# what a scorer beside the LLM on one GPU takes: SigLIP ViT-SO400M-14 in bf16 is 1.7 GiB of weights; its
# batches (1,024 texts or 64 images) up to about 1 GiB of activations; the rest is the allocator's slack
SCORER_GIB = 4.0


def reserved_bytes(options: DecodeOptions, device: torch.device) -> int:
    """Memory the LLM's rows leave for the other models on the device (the scorer)."""
    gib = options.reserved_gib if options.reserved_gib is not None else (SCORER_GIB if device.type == "cuda" else 0.0)
    return int(gib * 2**30)


def rows_that_fit(model, prompt_tokens: int, new_tokens: int, options: DecodeOptions, memory: int | None = None) -> int:
    """Rows per forward: the memory ``options.memory_fraction`` of the device's total leaves beside
    the weights and what is reserved for the scorer (``reserved_gib``), over one row's KV slots
    (prompt + reply), its prefill activations and its sampling buffers. ``options.max_batch`` wins
    when given."""
    if options.max_batch is not None:
        return options.max_batch
    param = next(model.parameters())
    item = param.element_size()
    text = _text_config(model.config)
    length = prompt_tokens + new_tokens
    chunk = min(options.prefill_chunk, prompt_tokens)
    activations = chunk * (6 * text.hidden_size + 3 * getattr(text, "intermediate_size", 4 * text.hidden_size)) * item
    per_row = (kv_bytes_per_token(model.config, param.dtype) * length + activations + chunk * length * item
               + 32 * text.vocab_size)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    reserved = reserved_bytes(options, param.device)
    free_for_rows = ((memory if memory is not None else total_memory(param.device)) * options.memory_fraction
                     - weights - reserved)
    if free_for_rows < per_row:
        raise InputError(f"one row of {length} tokens needs {per_row / 2**30:.2f} GiB beside the model's "
                         f"{weights / 2**30:.1f} GiB and {reserved / 2**30:.1f} GiB kept for the scorer, more than "
                         f"{options.memory_fraction:.0%} of the device holds: lower generator.max_new_tokens or the "
                         "prompt, or generator.options.reserved_gib, or use a larger device")
    return int(free_for_rows // per_row)


FOLDED = "mils_folded_gqa"


def folded_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, **kwargs):
    """One decode step's attention for grouped-query models: query heads sharing a KV head become
    rows of one query (``[b, kv heads, group, d]``), so SDPA reads each KV head once; anything else
    goes to transformers' SDPA. Returns ``[b, 1, heads, d]`` as transformers' attention does."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    batch, heads, length, dim = query.shape
    kv_heads = key.shape[1]
    if length != 1 or attention_mask is None or heads == kv_heads or dropout:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    folded = query.reshape(batch, kv_heads, heads // kv_heads, dim)
    out = torch.nn.functional.scaled_dot_product_attention(folded, key, value, attn_mask=attention_mask[..., : key.shape[-2]],
                                                           scale=scaling)
    return out.reshape(batch, heads, 1, dim).transpose(1, 2).contiguous(), None


def _register_folded() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(FOLDED, folded_attention)


class SlotCache(Cache):
    """Preallocated keys and values, written at ``start`` (a device tensor) onwards. Attention sees
    the first ``visible`` positions (None: all, the shape a CUDA graph needs)."""

    def __init__(self, config, rows: int, length: int, dtype: torch.dtype, device: torch.device) -> None:
        # Cache.__init__ is not called: its signature changes between transformers versions, and the
        # model only calls update() when it is given positions and a 4-D mask
        layers, kv_heads, head_dim = kv_shape(config)
        self.layers = []
        self.keys = [torch.zeros(rows, kv_heads, length, head_dim, dtype=dtype, device=device) for _ in range(layers)]
        self.values = [torch.zeros_like(k) for k in self.keys]
        self.start = torch.zeros(1, dtype=torch.long, device=device)
        self.visible: int | None = None

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args, **kwargs):
        at = self.start + torch.arange(key_states.shape[-2], device=self.start.device)
        keys, values = self.keys[layer_idx], self.values[layer_idx]
        keys.index_copy_(2, at, key_states.to(keys.dtype))
        values.index_copy_(2, at, value_states.to(values.dtype))
        if self.visible is None:
            return keys, values
        return keys[:, :, : self.visible], values[:, :, : self.visible]


class CudaGraphs:
    """Capture and replay of one decode step on a GPU. A stand-in with the same four methods runs the
    graph path on a CPU (benchmarks/gpu_selfcheck.py: ReplayStandIn)."""

    def supports(self, device: torch.device) -> bool:
        return device.type == "cuda"

    def warm_up(self, step: Callable[[], None], times: int) -> None:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(times):
                step()
        torch.cuda.current_stream().wait_stream(side)

    def capture(self, step: Callable[[], None]) -> Callable[[], None]:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
        return graph.replay

    def synchronize(self) -> None:
        torch.cuda.synchronize()


@dataclass
class Decoded:
    """A batch's replies as token ids (host lists), prompt lengths, and whether each ended by itself."""

    tokens: list[list[int]]
    prompt_tokens: list[int]
    finished: list[bool]


class BatchDecoder:
    """Decodes one left-padded batch; every per-token tensor stays on the device. ``graph_backend``
    captures and replays a step (CUDA graphs; a stand-in runs the graph path on a CPU)."""

    def __init__(self, model, sampler: TokenSampler, eos_ids: Sequence[int], pad_id: int, rng: Rng,
                 options: DecodeOptions, keeps_logits: bool, graph_backend: CudaGraphs | None = None) -> None:
        self.model, self.sampler, self.pad_id, self.rng, self.options = model, sampler, pad_id, rng, options
        self.graph_backend = graph_backend or CudaGraphs()
        self.device = model.device
        self.eos = torch.tensor(list(eos_ids), device=self.device)
        self.last_only = {"logits_to_keep": 1} if keeps_logits else {}
        self.slots = options.kv_cache == "slots" or (options.kv_cache == "auto" and slots_supported(model.config))
        on_gpu = self.device.type == "cuda"
        graphs = options.cuda_graphs if options.cuda_graphs is not None else on_gpu
        self.graphs = graphs and self.graph_backend.supports(self.device) and self.slots and rng == "counter"
        if options.cuda_graphs and not self.graphs:
            log.warning("cuda_graphs needs a GPU, kv_cache slots and rng counter: decoding eagerly")
        self.sync_every = options.sync_every or (32 if on_gpu else 1)
        fold = options.fold_gqa if options.fold_gqa is not None else on_gpu
        self.fold = fold and self.slots and model.config._attn_implementation == "sdpa"
        if self.fold:
            _register_folded()
        self.graph_failed = False  # set when a capture failed: later batches decode eagerly

    @torch.inference_mode()
    def run(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, seeds: Sequence[int], max_new: int) -> Decoded:
        rows, prompt = input_ids.shape
        dev = self.device
        self.out = torch.full((rows, max_new), self.pad_id, dtype=torch.long, device=dev)
        self.done = torch.zeros(rows, dtype=torch.bool, device=dev)
        self.current = torch.zeros(rows, dtype=torch.long, device=dev)
        self.k = torch.zeros(1, dtype=torch.long, device=dev)  # index of the next token to sample
        self.prompt_len = attention_mask.sum(-1)
        self.seed_words = split_seeds(seeds, dev)
        self.generators = ([torch.Generator(device=dev).manual_seed(int(s)) for s in seeds]
                           if self.rng == "torch" else None)
        self._prefill(input_ids, attention_mask, max_new)
        config = self.model.config
        saved = config._attn_implementation
        if self.fold:
            config._attn_implementation = FOLDED  # decode steps only; the prefill ran transformers' SDPA
        try:
            self._decode(prompt, max_new)
        finally:
            config._attn_implementation = saved
        return self._collect(max_new)

    def _decode(self, prompt: int, max_new: int) -> None:
        made = 1
        step: Callable[[], None] = self._step
        replayed = False  # a captured step attends over the whole reserved length (its shapes are fixed)
        if self.graphs and not self.graph_failed and max_new > 3:
            made, step = self._captured(made)
            replayed = step is not self._step
        while made < max_new:
            for _ in range(min(self.sync_every, max_new - made)):
                if self.cache is not None and not replayed:
                    self.cache.visible = prompt + made  # eager: attend to the filled positions only
                step()
                made += 1
            if bool(self.done.all()):  # the one look at the device, every sync_every tokens
                break

    def _prefill(self, input_ids: torch.Tensor, mask: torch.Tensor, max_new: int) -> None:
        rows, prompt = input_ids.shape
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        if not self.slots:  # transformers' own cache and mask machinery
            self.cache, self.mask2d = None, mask
            self.hf_cache = DynamicCache()
            out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions,
                             past_key_values=self.hf_cache, use_cache=True, **self.last_only)
            return self._sample_into(out.logits[:, -1, :])
        length = prompt + max_new
        dtype = next(self.model.parameters()).dtype
        self.cache = SlotCache(self.model.config, rows, length, dtype, self.device)
        self.valid = torch.zeros(rows, length, dtype=torch.bool, device=self.device)
        self.valid[:, :prompt] = mask.bool()
        self.columns = torch.arange(length, device=self.device)
        self.blocked = torch.finfo(dtype).min
        chunk = self.options.prefill_chunk
        for c0 in range(0, prompt, chunk):
            c1 = min(prompt, c0 + chunk)
            self.cache.start.fill_(c0)
            self.cache.visible = c1
            causal = self.columns[None, :c1] <= self.columns[c0:c1, None]
            allowed = self.valid[:, None, None, :c1] & causal[None, None]
            out = self.model(input_ids=input_ids[:, c0:c1], attention_mask=self._additive(allowed),
                             position_ids=positions[:, c0:c1], past_key_values=self.cache, use_cache=True,
                             **self.last_only)
        self._sample_into(out.logits[:, -1, :])

    def _additive(self, allowed: torch.Tensor) -> torch.Tensor:
        dtype = self.cache.keys[0].dtype
        return torch.zeros(allowed.shape, dtype=dtype, device=self.device).masked_fill_(~allowed, self.blocked)

    def _sample_into(self, logits: torch.Tensor) -> None:
        """Token k of every row: drawn, written to the output, fed next; finished rows get padding."""
        uniforms = (generator_uniforms(self.generators, self.device) if self.generators is not None
                    else counter_uniforms(self.seed_words, self.k))
        token = self.sampler(logits, uniforms).masked_fill(self.done, self.pad_id)
        self.out.index_copy_(1, self.k, token[:, None])
        self.done |= (token[:, None] == self.eos).any(-1)
        self.current.copy_(token)
        self.k.add_(1)

    def _step(self) -> None:
        """Feed the last token (position k - 1 of the reply), then sample token k."""
        fed = self.k - 1
        if self.cache is None:
            self.mask2d = torch.cat([self.mask2d, (~self.done).long()[:, None]], dim=-1)
            out = self.model(input_ids=self.current[:, None], attention_mask=self.mask2d,
                             position_ids=(self.prompt_len + fed)[:, None], past_key_values=self.hf_cache,
                             use_cache=True)
            return self._sample_into(out.logits[:, -1, :])
        prompt = self.valid.shape[1] - self.out.shape[1]
        column = fed + prompt
        self.cache.start.copy_(column)
        self.valid.index_fill_(1, column, True)
        visible = self.cache.visible or self.valid.shape[1]
        mask = self._additive(self.valid[:, None, None, :visible])
        out = self.model(input_ids=self.current[:, None], attention_mask=mask,
                         position_ids=(self.prompt_len + fed)[:, None], past_key_values=self.cache, use_cache=True)
        self._sample_into(out.logits[:, -1, :])

    def _captured(self, made: int) -> tuple[int, Callable[[], None]]:
        """Two eager steps (they are real tokens; a GPU runs them on a side stream), then one step
        captured. A capture that fails returns the eager step: the caller then sets what each step
        sees, as for a batch that never tried a graph."""
        self.cache.visible = None
        self.graph_backend.warm_up(self._step, 2)
        made += 2
        try:
            replay = self.graph_backend.capture(self._step)
        except Exception as err:  # noqa: BLE001  (a forward that waits on the host cannot be captured)
            log.warning("CUDA graph capture failed (%s): decoding eagerly", str(err).splitlines()[0])
            self.graph_failed = True
            self.graph_backend.synchronize()
            return made, self._step
        return made, replay

    def _collect(self, max_new: int) -> Decoded:
        is_end = (self.out[..., None] == self.eos).any(-1)
        ended = is_end.any(-1)
        lengths = torch.where(ended, is_end.int().argmax(-1) + 1, torch.full_like(ended, max_new, dtype=torch.long))
        out, lengths, ended, prompt = (t.cpu() for t in (self.out, lengths, ended, self.prompt_len))
        self.cache = self.hf_cache = None  # free the KV memory before the next batch
        return Decoded([row[:n] for row, n in zip(out.tolist(), lengths.tolist())], prompt.tolist(), ended.tolist())
