# The two commands of the quick start: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test check install install-test native clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Editable installs that compile nothing (quick); `native` compiles.
install: $(BIN)/python
	HYBRID_NO_EXTENSIONS=1 $(BIN)/python -m pip install --quiet -e .

install-test: $(BIN)/python
	HYBRID_NO_EXTENSIONS=1 $(BIN)/python -m pip install --quiet -e '.[test]'

# The compiled build, in place beside the sources (setup.py: the request path
# through mypyc, and the Cython piece, about 100 s here), compiled again only
# when one of those sources, setup.py or pyproject.toml changed. Without a C compiler setup.py
# says so in one warning line, and the interpreted build runs.
COMPILED_SOURCES := $(shell $(PYTHON) -c 'import runpy; n = runpy.run_path("hybrid/native.py"); \
	print(*(n["module_path"](m, "hybrid", "workers") + ".py" for m in n["COMPILED"]))') \
	hybrid/protocol/whole_head.pyx
NATIVE := $(VENV)/.native-built

$(NATIVE): $(COMPILED_SOURCES) setup.py pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@$(BIN)/python -c 'import hybrid.native as n; print("hybrid: the", n.build().describe(), "build")'
	touch $@

native: $(NATIVE)

run: install native
	$(BIN)/hybrid run examples.hello:app --bind $(HOST):$(PORT) --access-logfile -

# The suite mostly waits on the servers it starts: two processes, one a core,
# run it in half the time, each test file whole (a module's server starts
# once); three were faster still but loaded the machine enough to make
# timing-bound tests flaky. The container tests build an image, the heaviest
# work of all: they run after, alone.
PARALLEL := -n 2 --dist loadfile
INNER_LOOP := -m "not (process and slow)"

# The whole suite on the compiled build; then on the interpreted one
# (HYBRID_NO_EXTENSIONS=1) the core, and the HTTP conformance of one class (in
# one process each: quicker than two); then the image.
test: install-test native
	$(BIN)/python -m pytest $(PARALLEL) --ignore=tests/test_container.py $(PYTESTFLAGS)
	HYBRID_NO_EXTENSIONS=1 $(BIN)/python -m pytest -m core $(PYTESTFLAGS)
	HYBRID_NO_EXTENSIONS=1 $(BIN)/python -m pytest tests/test_http_conformance.py -k sync-basic $(PYTESTFLAGS)
	$(BIN)/python -m pytest tests/test_container.py $(PYTESTFLAGS) || [ $$? -eq 5 ]

# The inner loop, under 2 minutes here: every test but those both `process` and
# `slow` (the tiers are set in tests/conftest.py). In: the core, the settings,
# the types, the import rules, the docs' tables, and the drivers' tests on the
# servers their modules share (HTTP conformance, WSGI behaviour, WebSockets).
# Out: the image, the wheel, and every test that starts a process of its own
# (a server per test: most of the suite's time). `-m core`: no process at all.
# It runs the interpreted build: no compile in the loop.
check: install-test
	HYBRID_NO_EXTENSIONS=1 $(BIN)/python -m pytest $(PARALLEL) $(INNER_LOOP) $(PYTESTFLAGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache build hybrid/_compiled.json
	find hybrid workers -name '*.so' -delete
