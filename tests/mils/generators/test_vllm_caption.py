"""`mils caption --backend vllm` in the main environment, on real vLLM: the generator starts the
server of `make vllm`'s environment (.venv-vllm; `make test` builds it first) for the run."""

import json
import os
import re
from pathlib import Path

import pytest

from mils.generators.vllm_server import vllm_python


@pytest.mark.slow
@pytest.mark.skipif(vllm_python() is None, reason="no .venv-vllm here: `make vllm` builds it (`make test` does)")
def test_caption_on_vllm_gives_the_same_kind_of_results_as_transformers_and_its_ledger(photo_dir, capsys):
    from cli.main import main

    photos = [str(photo_dir / "chelsea.jpg"), str(photo_dir / "coffee.jpg")]
    args = ["caption", *photos, "--json", "--steps", "2", "--keep", "5", "--requested", "5"]
    runs = {}
    for backend in ("vllm", "transformers"):
        assert main([*args, "--backend", backend]) == 0
        runs[backend] = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    for on_vllm, on_transformers in zip(runs["vllm"], runs["transformers"]):
        assert on_vllm["input"] == on_transformers["input"]
        assert [h["step"] for h in on_vllm["history"]] == [0, 1, 2]
        assert on_vllm["history"][0] == on_transformers["history"][0]  # the same bank and scorer
        assert on_vllm["history"][2]["best_score"] >= on_vllm["history"][0]["best_score"]
        ledger = [c for c in on_vllm["cost"] if c["step"] > 0]
        assert len(ledger) == 2 and all(c["generated_tokens"] > 0 and c["llm_seconds"] > 0 for c in ledger)
        # the same chat template: the first step's prompt is the same number of tokens on both
        assert ledger[0]["prompt_tokens"] == on_transformers["cost"][1]["prompt_tokens"]
    # the engine was sized from the run, not from the memory that was free: its log says so
    logs = sorted((Path(os.environ.get("MILS_CACHE_DIR", "~/.cache/mils")).expanduser() / "vllm-logs").glob("*.log"),
                  key=lambda p: p.stat().st_mtime)
    log = logs[-1].read_text(errors="replace")
    planned = re.search(r"^mils: context (\d+) tokens \(model limit 8192\), KV cache ([\d.]+) GiB \(8 x \1 tokens\)",
                        log, re.M)
    assert planned, log[:500]
    context = int(planned.group(1))
    assert 5 * (8 + 2 * 77) + 200 < context < 8192  # 5 shown candidates of <= 77 words, 200 new tokens
    assert re.search(r"Explicitly set \(" + re.escape(str(round(float(planned.group(2)), 2))), log), "the cache size reached vLLM"
