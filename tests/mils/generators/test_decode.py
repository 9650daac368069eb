"""The transformers backend's decoding loop (mils/generators/decode.py) and its sampler
(mils/generators/sampler.py) on a tiny random Llama: no host wait per token, per-row seeds,
exact sampling, the KV slots against transformers' own cache, rows sized from the model."""

import numpy as np
import pytest
import torch

from benchmarks.gpu_selfcheck import HostWaits as HostReads  # the self-check counts the same way
from mils.engine.sampling import SamplingOptions
from mils.errors import InputError
from mils.generators.decode import BatchDecoder, DecodeOptions, kv_bytes_per_token, rows_that_fit
from mils.generators.sampler import TokenSampler, counter_uniforms, split_seeds
from mils.generators.transformers_llm import TransformersGenerator

PROMPTS = ["a man sitting on a red car near the beach", "the dog", "a small bird in the sky with a boat",
           "two cats", "a train on the street of a small town"]


def generator(tiny, rng="counter", new=12, **decode) -> TransformersGenerator:
    model, tok = tiny
    gen = TransformersGenerator(model, tok, SamplingOptions(max_new_tokens=new, rng=rng, temperature=1.0, top_p=0.95),
                                DecodeOptions(**decode))
    gen.eos_ids = [tok.convert_tokens_to_ids("<|im_end|>")]
    return gen


def test_the_hash_is_murmur3s_finaliser_in_32_bit_arithmetic():
    """int64 torch arithmetic must give the uint32 answer (no overflow, logical shifts)."""
    from mils.generators.sampler import _fmix32

    values = np.array([0, 1, 2**31 - 1, 2**31, 2**32 - 1, 123456789, 0xDEADBEEF], dtype=np.uint64)

    def reference(x):
        x = x.astype(np.uint32)
        with np.errstate(over="ignore"):
            x ^= x >> np.uint32(16)
            x = x * np.uint32(0x85EBCA6B)
            x ^= x >> np.uint32(13)
            x = x * np.uint32(0xC2B2AE35)
            x ^= x >> np.uint32(16)
        return x.astype(np.int64)

    assert _fmix32(torch.tensor(values.astype(np.int64))).tolist() == reference(values).tolist()


def test_counter_uniforms_are_uniform_and_depend_on_seed_and_position_only():
    seeds = split_seeds(list(range(20000)) + [2**63 - 1, -1], "cpu")
    u0 = counter_uniforms(seeds, torch.tensor([0]))
    u1 = counter_uniforms(seeds, torch.tensor([1]))
    assert u0.dtype == torch.float32 and float(u0.min()) >= 0 and float(u0.max()) < 1
    counts = np.histogram(u0[:20000].numpy(), bins=10, range=(0, 1))[0]
    assert np.abs(counts - 2000).max() < 200  # 10 bins of 2,000: a flat histogram
    assert abs(float(np.corrcoef(u0.numpy(), u1.numpy())[0, 1])) < 0.05  # positions are not correlated
    again = counter_uniforms(split_seeds([7, 3], "cpu"), torch.tensor([1]))
    assert again.tolist() == [u1[7].item(), u1[3].item()]  # a row's draw: its seed and position, nothing else


@pytest.mark.parametrize("top_k,window_check", [(None, False), (None, True), (3, False)])
def test_the_sampler_draws_exactly_from_the_filtered_distribution(top_k, window_check):
    """Chi-square of 40,000 counter draws on a toy vocabulary against temperature, then top-k, then
    top-p computed by hand."""
    from scipy.stats import chisquare

    logits = torch.tensor([2.0, 1.6, 1.5, 1.0, 0.3, 0.1, -0.5, -1.0, -2.0, -3.0])
    temperature, top_p = 0.7, 0.9
    probs = torch.softmax(logits / temperature, -1).numpy().astype(np.float64)
    keep = np.argsort(-probs)[: top_k or len(probs)]
    kept = probs[keep] / probs[keep].sum()
    nucleus = keep[: int(np.searchsorted(np.cumsum(kept), top_p)) + 1]
    expected = np.zeros(len(probs))
    expected[nucleus] = probs[nucleus] / probs[nucleus].sum()

    sampler = TokenSampler(temperature, top_k, top_p, window_check=window_check)
    sampler.WINDOW = 4  # the toy vocabulary is smaller than the real window
    rows, positions = 4000, 10
    seeds = split_seeds(range(rows), "cpu")
    tokens = np.concatenate([sampler(logits.repeat(rows, 1), counter_uniforms(seeds, torch.tensor([p]))).numpy()
                             for p in range(positions)])
    assert set(tokens) == set(nucleus.tolist())
    observed = np.bincount(tokens, minlength=len(probs))[nucleus]
    assert chisquare(observed, expected[nucleus] * len(tokens)).pvalue > 0.001


def test_the_decode_loop_reads_nothing_from_the_device_per_token(tiny):
    """With KV slots (the path of every full-attention decoder). transformers' own cache (kv_cache:
    hf, the fallback for sliding windows) makes its mask with a host read per token: 1 + 1 per token
    on this model, counted here when this test was written."""
    model, tok = tiny
    enc = tok(PROMPTS[:3], return_tensors="pt", padding=True)

    def host_reads(new_tokens: int, sync_every: int) -> int:
        # the GPU's sampler (no window check: it reads a flag per token), rows that never end
        decoder = BatchDecoder(model, TokenSampler(1.0, None, 0.9), [-1], tok.pad_token_id, "counter",
                               DecodeOptions(kv_cache="slots", sync_every=sync_every), keeps_logits=True)
        with HostReads() as reads:
            out = decoder.run(enc.input_ids, enc.attention_mask, [1, 2, 3], new_tokens)
        assert [len(t) for t in out.tokens] == [new_tokens] * 3
        return reads.count

    assert host_reads(8, 1000) == host_reads(40, 1000)  # no wait per token
    assert host_reads(40, 8) == host_reads(8, 8) + 4  # one look at the finished flags every 8 tokens


@pytest.mark.parametrize("rng", ["counter", "torch"])
def test_a_reply_alone_equals_the_same_prompt_and_seed_in_any_batch(tiny, rng):
    gen = generator(tiny, rng)
    batch = gen.generate(PROMPTS, [11, 22, 33, 44, 55])
    assert [gen.generate([p], [s])[0] for p, s in [(PROMPTS[1], 22), (PROMPTS[4], 55)]] == [batch[1], batch[4]]
    split = generator(tiny, rng, max_batch=2).generate(PROMPTS, [11, 22, 33, 44, 55])  # three forwards
    assert split == batch and [r.usage for r in split] == [r.usage for r in batch]
    assert gen.generate([PROMPTS[1]], [23])[0] != batch[1]


def test_kv_slots_decode_what_transformers_cache_decodes(tiny):
    """Same logits, same draws: the slots (with a chunked prefill) and transformers' DynamicCache."""
    seeds = [5, 6, 7, 8, 9]
    for rng in ("counter", "torch"):
        slots = generator(tiny, rng, new=16, kv_cache="slots", prefill_chunk=3).generate(PROMPTS, seeds)
        hf = generator(tiny, rng, new=16, kv_cache="hf").generate(PROMPTS, seeds)
        assert slots == hf
        assert [(r.usage, r.cut) for r in slots] == [(r.usage, r.cut) for r in hf]


def test_a_reply_ends_at_its_stop_token_and_counts_it(tiny):
    gen = generator(tiny, new=30)
    end = gen.eos_ids[0]
    ends_early = [r for r in gen.generate(PROMPTS * 4, list(range(20))) if not r.cut]
    assert ends_early, "the tiny model writes its end token within 30 tokens for some seed"
    for reply in ends_early:
        assert reply.usage.generated < 30 and "<|im_end|>" not in reply
    assert end in gen.eos_ids


def test_rows_per_forward_come_from_the_model_and_total_memory(tiny):
    from transformers import LlamaConfig

    llama8b = LlamaConfig(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8)
    assert kv_bytes_per_token(llama8b, torch.bfloat16) == 128 * 1024  # 32 layers x 8 heads x 128 x (K, V) x 2 bytes
    model, _ = tiny
    options = DecodeOptions()
    small, large = (rows_that_fit(model, 100, 50, options, memory=m) for m in (2**26, 2**30))
    assert 1 <= small < large
    per_row = kv_bytes_per_token(model.config, torch.float32) * 150
    assert large * per_row < 0.9 * 2**30
    assert rows_that_fit(model, 100, 50, DecodeOptions(max_batch=7), memory=2**26) == 7
    with pytest.raises(InputError, match="max_new_tokens"):
        rows_that_fit(model, 100, 10**7, options, memory=2**26)


@pytest.mark.parametrize("bad,match", [({"kv_cache": "paged"}, "kv_cache"), ({"sync_every": 0}, "sync_every"),
                                       ({"max_batch": 2.5}, "max_batch"), ({"memory_fraction": 1.5}, "memory")])
def test_decode_options_are_checked(bad, match):
    with pytest.raises(InputError, match=match):
        DecodeOptions(**bad)


def test_the_paper_profile_draws_on_the_device_and_the_offline_one_keeps_its_keys():
    from mils.config.profiles import get_profile
    from mils.config.run_config import build_config

    assert get_profile("paper")["generator"]["rng"] == "counter"
    offline = build_config("offline")
    assert offline.generator.rng == "torch"
    assert offline.result_key() == "e9b5fb6f803c"  # the key it had before rng existed: its runs resume
    assert build_config("offline", {"generator": {"rng": "counter"}}).result_key() != offline.result_key()


def test_folded_grouped_query_attention_equals_transformers_sdpa():
    """A decode step's attention with the query heads folded into the query length (no KV copies)
    against transformers' SDPA (repeat_kv), with a padding mask."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from mils.generators.decode import folded_attention

    torch.manual_seed(0)
    module = torch.nn.Module()
    module.num_key_value_groups, module.is_causal = 4, True
    query, key, value = torch.randn(3, 8, 1, 16), torch.randn(3, 2, 10, 16), torch.randn(3, 2, 10, 16)
    mask = torch.zeros(3, 1, 1, 10)
    mask[1, ..., :4] = torch.finfo(torch.float32).min  # a left-padded row
    ours, _ = folded_attention(module, query, key, value, mask, scaling=0.25)
    theirs, _ = sdpa_attention_forward(module, query, key, value, mask, scaling=0.25)
    assert ours.shape == theirs.shape == (3, 1, 8, 16)
    torch.testing.assert_close(ours, theirs)


def test_the_folded_decode_samples_what_the_plain_one_samples(tiny):
    seeds = [5, 6, 7, 8, 9]
    folded = generator(tiny, new=16, fold_gqa=True).generate(PROMPTS, seeds)
    assert folded == generator(tiny, new=16, fold_gqa=False).generate(PROMPTS, seeds)
    assert tiny[0].config._attn_implementation == "sdpa"  # restored after the decode


def _greedy(model, backend, **options) -> BatchDecoder:
    return BatchDecoder(model, TokenSampler(1.0, 1, 1.0), [-1], 0, "counter",
                        DecodeOptions(kv_cache="slots", cuda_graphs=True, **options), keeps_logits=True,
                        graph_backend=backend)


def test_the_graph_path_replays_its_step_and_decodes_what_generate_decodes():
    """The GPU-only branch on a CPU: a stand-in records the step at capture and runs it at replay."""
    from benchmarks.gpu_selfcheck import ReplayStandIn, left_padded, reference, tiny_llama

    model = tiny_llama(torch.device("cpu"))
    ids, mask = left_padded(torch.device("cpu"))
    backend = ReplayStandIn()
    out = _greedy(model, backend, fold_gqa=True).run(ids, mask, list(range(8)), 16)
    assert out.tokens == reference(model, ids, mask, 16)
    assert backend.captures == 1 and backend.replays == 16 - 3  # token 0: prefill; 1-2: warm-up steps


@pytest.mark.parametrize("new", [2, 3])
def test_a_short_reply_on_the_graph_path_attends_to_what_it_generated(new):
    from benchmarks.gpu_selfcheck import ReplayStandIn, left_padded, reference, tiny_llama

    model = tiny_llama(torch.device("cpu"))
    ids, mask = left_padded(torch.device("cpu"))
    assert _greedy(model, ReplayStandIn()).run(ids, mask, list(range(8)), new).tokens == reference(model, ids, mask, new)


def test_after_a_failed_capture_every_later_batch_still_decodes_what_generate_decodes(caplog):
    from benchmarks.gpu_selfcheck import ReplayStandIn, left_padded, reference, tiny_llama

    model = tiny_llama(torch.device("cpu"))
    decoder = _greedy(model, ReplayStandIn(fail=True))
    for seed in (1, 2, 3):  # the batch whose capture failed, then two more
        ids, mask = left_padded(torch.device("cpu"), seed)
        assert decoder.run(ids, mask, list(range(8)), 12).tokens == reference(model, ids, mask, 12)
    assert decoder.graph_failed and sum("capture failed" in r.getMessage() for r in caplog.records) == 1


def test_rows_leave_room_for_the_scorer_on_a_gpu(tiny):
    from mils.generators.decode import SCORER_GIB, reserved_bytes

    model, _ = tiny
    memory = 2**33
    assert reserved_bytes(DecodeOptions(), torch.device("cuda")) == SCORER_GIB * 2**30
    assert reserved_bytes(DecodeOptions(), torch.device("cpu")) == 0
    kept = rows_that_fit(model, 100, 50, DecodeOptions(reserved_gib=4), memory=memory)
    assert kept < rows_that_fit(model, 100, 50, DecodeOptions(), memory=memory)
    with pytest.raises(InputError, match="kept for the scorer"):
        rows_that_fit(model, 100, 50, DecodeOptions(reserved_gib=8), memory=memory)
    with pytest.raises(InputError, match="reserved_gib"):
        DecodeOptions(reserved_gib=-1)
