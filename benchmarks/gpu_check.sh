#!/usr/bin/env bash
# The GPU benchmark on a bare GPU machine with no network, in under 6 minutes:
#   bash benchmarks/gpu_prepare.sh            (here, once: fills .gpu/ with wheels and the tokenizer)
#   bash benchmarks/gpu_check.sh [OUT] [gpu_bench.py options]
#                                             (there, with .gpu carried; OUT: $OUT, else outputs/gpu_check)
# Installs the carried wheels into a temporary folder (never over the machine's torch or
# transformers), then runs benchmarks/gpu_bench.py: the decode comparison at batch 16, 64, 128,
# 256, the official pattern on one chunk of 16, our loop at the best batch; every row is in
# OUT/gpu_bench.json as soon as it is measured, so a run cut short keeps what it measured.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/gpu_check}
if [ $# -gt 0 ] && [[ "$1" != --* ]]; then OUT=$1; shift; fi
LIMIT=${GPU_CHECK_SECONDS:-330}
mkdir -p "$OUT"
PY=${PYTHON:-$(command -v python3 || command -v python)}
{
  echo "python: $PY ($($PY --version 2>&1))"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || echo "nvidia-smi: none"
  if ls .gpu/wheels/*.whl >/dev/null 2>&1; then
    SITE=$(mktemp -d)
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" .gpu/wheels/*.whl \
      && export PYTHONPATH="$SITE" && echo "carried wheels installed: $(ls .gpu/wheels | wc -l)"
  else
    echo "no .gpu/wheels (run benchmarks/gpu_prepare.sh here and carry .gpu): using what the machine has"
  fi
  "$PY" -c "import torch, transformers, open_clip, pydantic; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), '| transformers', transformers.__version__, '| open_clip', open_clip.__version__)"
} 2>&1 | tee "$OUT/setup.txt"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
TOKENIZER=()
[ -d .gpu/tokenizer ] && TOKENIZER=(--tokenizer .gpu/tokenizer)
timeout "$LIMIT" "$PY" benchmarks/gpu_bench.py "${TOKENIZER[@]}" --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_bench.log"
status=${PIPESTATUS[0]}
echo "gpu_bench exit status: $status (124: the ${LIMIT} s limit; the rows measured before it are in gpu_bench.json)" \
  | tee -a "$OUT/setup.txt"
exit "$status"
