"""The decoding loop checked on the device before any speed figure: a tiny float32 Llama with
grouped-query attention, greedy replies equal to transformers' ``generate`` token for token on the
graph path, the eager path, with a chunked prefill, after a failed graph capture (a second batch)
and for 3-token replies; a sampled reply alone equal to the same prompt and seed in a batch; host
syncs equal at 8 and at 40 tokens (``torch.cuda.set_sync_debug_mode`` on a GPU, a count of waiting
tensor calls on a CPU); graph-capture warnings counted. Prints one JSON line; exits 1 when a check
fails (gpu_check.sh then stops: no speed figures from a wrong decoder).

On a CPU (``--cpu``, or no GPU) the graph path runs through :class:`ReplayStandIn`, which records
the step at capture without running it and runs it at replay, as a CUDA graph does.

    python benchmarks/gpu_selfcheck.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch.overrides import TorchFunctionMode  # noqa: E402

from mils.generators import (  # noqa: E402
    BatchDecoder,
    CudaGraphs,
    DecodeOptions,
    TokenSampler,  # noqa: E402
)

ROWS, PAD = 8, 0


class ReplayStandIn:
    """The graph path on a CPU: ``capture`` records the step without running it (as a CUDA capture
    records kernels), the replay runs it; ``fail`` raises at capture, as a capture that met a host wait."""

    def __init__(self, fail: bool = False) -> None:
        self.fail, self.captures, self.replays = fail, 0, 0

    def supports(self, device: torch.device) -> bool:
        return True

    def warm_up(self, step, times: int) -> None:
        for _ in range(times):
            step()

    def capture(self, step):
        self.captures += 1
        if self.fail:
            raise RuntimeError("operation not permitted when stream is capturing (stand-in)")

        def replay() -> None:
            self.replays += 1
            step()
        return replay

    def synchronize(self) -> None:
        pass


class FailingCapture(CudaGraphs):
    """The real CUDA backend whose capture fails (what a forward that waits on the host meets)."""

    def capture(self, step):
        raise RuntimeError("operation not permitted when stream is capturing (forced)")


class HostWaits(TorchFunctionMode):
    """Counts tensor calls that make the host wait for the device (the CPU's view of a sync)."""

    WAITS = {"item", "tolist", "__bool__", "__int__", "__float__", "__index__", "cpu", "numpy", "nonzero"}

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.count += getattr(func, "__name__", "") in self.WAITS
        return func(*args, **(kwargs or {}))


class CaptureWarnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += "capture" in record.getMessage()


def tiny_llama(device: torch.device):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         attn_implementation="sdpa")
    model = LlamaForCausalLM(config).to(device=device, dtype=torch.float32).eval()
    model.generation_config.eos_token_id = None  # every reply runs to its length
    return model


def left_padded(device: torch.device, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(5, 21, (ROWS,), generator=gen)
    width = int(lengths.max())
    ids = torch.full((ROWS, width), PAD, dtype=torch.long)
    mask = torch.zeros(ROWS, width, dtype=torch.long)
    for r, n in enumerate(lengths.tolist()):
        ids[r, width - n:] = torch.randint(3, 256, (n,), generator=gen)
        mask[r, width - n:] = 1
    return ids.to(device), mask.to(device)


def reference(model, ids, mask, new: int) -> list[list[int]]:
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new, min_new_tokens=new,
                             do_sample=False, pad_token_id=PAD)
    return out[:, ids.shape[1]:].tolist()


def decoder(model, backend, sampler=None, **options) -> BatchDecoder:
    sampler = sampler or TokenSampler(1.0, 1, 1.0)  # top-k 1: greedy
    return BatchDecoder(model, sampler, [-1], PAD, "counter", DecodeOptions(kv_cache="slots", **options),
                        keeps_logits=True, graph_backend=backend)


def rows_equal(decoded, expected) -> int:
    return sum(a == b for a, b in zip(decoded.tokens, expected))


def host_syncs(model, ids, mask, backend, new: int, on_gpu: bool) -> int:
    d = decoder(model, backend, sync_every=1000)
    if not on_gpu:
        with HostWaits() as waits:
            d.run(ids, mask, list(range(ROWS)), new)
        return waits.count
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            d.run(ids, mask, list(range(ROWS)), new)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in seen)


def run_checks(device: torch.device, new: int = 24) -> dict:
    on_gpu = device.type == "cuda"
    graphs = CudaGraphs if on_gpu else ReplayStandIn
    failing = FailingCapture() if on_gpu else ReplayStandIn(fail=True)
    model = tiny_llama(device)
    ids, mask = left_padded(device)
    other_ids, other_mask = left_padded(device, seed=2)
    want, want_other = reference(model, ids, mask, new), reference(model, other_ids, other_mask, new)
    watcher = CaptureWarnings()
    logging.getLogger("mils.generators.decode").addHandler(watcher)
    seeds = list(range(ROWS))
    results = {
        "greedy_graph": rows_equal(decoder(model, graphs(), cuda_graphs=True, fold_gqa=True).run(ids, mask, seeds, new),
                                   want),
        "greedy_eager": rows_equal(decoder(model, graphs(), cuda_graphs=False).run(ids, mask, seeds, new), want),
        "greedy_chunked_prefill": rows_equal(decoder(model, graphs(), cuda_graphs=True, prefill_chunk=4).run(
            ids, mask, seeds, new), want),
        "greedy_3_tokens_graph_path": rows_equal(decoder(model, graphs(), cuda_graphs=True).run(ids, mask, seeds, 3),
                                                 [w[:3] for w in want]),
    }
    clean_warnings = watcher.count
    after_failure = decoder(model, failing, cuda_graphs=True)
    first = after_failure.run(ids, mask, seeds, new)
    results["greedy_failed_capture"] = rows_equal(first, want)
    results["greedy_batch_after_failed_capture"] = rows_equal(after_failure.run(other_ids, other_mask, seeds, new),
                                                              want_other)
    sampler = TokenSampler(0.7, None, 0.9)
    batch = decoder(model, graphs(), sampler, cuda_graphs=True).run(ids, mask, seeds, new)
    alone = decoder(model, graphs(), sampler, cuda_graphs=True).run(ids[3:4], mask[3:4], seeds[3:4], new)
    syncs = {n: host_syncs(model, ids, mask, graphs(), n, on_gpu) for n in (8, 40)}
    logging.getLogger("mils.generators.decode").removeHandler(watcher)
    checks = {name: equal == ROWS for name, equal in results.items()}
    checks["sampled_alone_equals_batch"] = alone.tokens[0] == batch.tokens[3]
    checks["host_syncs_equal_at_8_and_40"] = syncs[8] == syncs[40]
    checks["no_capture_warning_on_the_graph_path"] = clean_warnings == 0
    checks["failed_capture_warned"] = watcher.count - clean_warnings >= 1
    return {"selfcheck": "pass" if all(checks.values()) else "fail", "device": _name(device),
            "graphs": "cuda" if on_gpu else "stand-in", "checks": checks,
            "rows_equal_to_generate": {k: f"{v}/{ROWS}" for k, v in results.items()},
            "host_syncs": syncs, "capture_warnings": {"graph_path": clean_warnings, "after_forced_failure":
                                                       watcher.count - clean_warnings}}


def _name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cpu", action="store_true", help="run on the CPU even where a GPU is (the graph stand-in)")
    p.add_argument("--out", help="also write selfcheck.json here")
    a = p.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() and not a.cpu else "cpu")
    result = run_checks(device)
    line = json.dumps(result)
    print(line, flush=True)
    if a.out:
        Path(a.out).mkdir(parents=True, exist_ok=True)
        (Path(a.out) / "selfcheck.json").write_text(line + "\n")
    return 0 if result["selfcheck"] == "pass" else 1


if __name__ == "__main__":
    sys.exit(main())
