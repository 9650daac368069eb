#!/usr/bin/env bash
# The GPU benchmark on a bare GPU machine with no network, in under 6 minutes:
#   bash benchmarks/gpu_prepare.sh            (here, once: fills .gpu/ with wheels and the tokenizer)
#   bash benchmarks/gpu_check.sh [OUT] [gpu_bench.py options]
#                                             (there, with .gpu carried; OUT: $OUT, else outputs/gpu_check;
#                                              GPU_KIT: the kit folder, else .gpu)
# 1. installs the carried wheels into a temporary folder (never over the machine's torch or
#    transformers) and checks that every module the benchmark needs imports (else: exit 1 here);
# 2. runs benchmarks/gpu_selfcheck.py: our decoding loop against `generate` on the device; a
#    failure stops here (exit 1): no speed figures from a wrong decoder;
# 3. runs benchmarks/gpu_bench.py within GPU_CHECK_SECONDS (330): every row is in OUT/gpu_bench.json
#    as soon as it is measured, so a run cut short keeps what it measured.
# --tiny (passed on to gpu_bench.py) runs the whole kit on a CPU: the self-check's graph path through
# its stand-in, the benchmark's small configurations (the test suite does this on a simulated bare machine).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/gpu_check}
if [ $# -gt 0 ] && [[ "$1" != --* ]]; then OUT=$1; shift; fi
KIT=${GPU_KIT:-.gpu}
LIMIT=${GPU_CHECK_SECONDS:-330}
mkdir -p "$OUT"
PY=${PYTHON:-$(command -v python3 || command -v python)}
SELFCHECK=()
for arg in "$@"; do [ "$arg" = --tiny ] && SELFCHECK=(--cpu); done

setup() {  # runs in this shell (not in a pipeline's subshell), so its PYTHONPATH stays
  echo "python: $PY ($($PY --version 2>&1))"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || echo "nvidia-smi: none"
  if ls "$KIT"/wheels/*.whl >/dev/null 2>&1; then
    SITE=$(mktemp -d)
    trap 'rm -rf "$SITE"' EXIT  # the carried wheels' install (25 MB): gone when the check ends
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" "$KIT"/wheels/*.whl \
      || { echo "installing the carried wheels from $KIT/wheels failed"; return 1; }
    export PYTHONPATH="$SITE"
    echo "carried wheels installed: $(ls "$KIT"/wheels | wc -l) into $SITE"
  else
    echo "no $KIT/wheels (run benchmarks/gpu_prepare.sh here and carry .gpu): using what the machine has"
  fi
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
  "$PY" -c "import torch, transformers, open_clip, pydantic, mils.engine.loop, mils.generators.transformers_llm
print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), '| transformers', transformers.__version__, '| open_clip', open_clip.__version__)"
}
setup > "$OUT/setup.txt" 2>&1
status=$?
cat "$OUT/setup.txt"
if [ $status -ne 0 ]; then
  echo "gpu_check: the set-up failed (above, and in $OUT/setup.txt): nothing measured" | tee -a "$OUT/setup.txt"
  exit 1
fi
TOKENIZER=()
[ -d "$KIT/tokenizer" ] && TOKENIZER=(--tokenizer "$KIT/tokenizer")
if ! "$PY" benchmarks/gpu_selfcheck.py "${SELFCHECK[@]}" --out "$OUT"; then
  echo "gpu_check: the decoder self-check failed ($OUT/selfcheck.json): no speed figures from a wrong decoder"
  exit 1
fi
timeout "$LIMIT" "$PY" benchmarks/gpu_bench.py "${TOKENIZER[@]}" --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_bench.log"
status=${PIPESTATUS[0]}
echo "gpu_bench exit status: $status (124: the ${LIMIT} s limit; the rows measured before it are in gpu_bench.json)" \
  | tee -a "$OUT/setup.txt"
exit "$status"
