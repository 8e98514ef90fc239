# The two commands of the quick start: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test check install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'

run: install
	$(BIN)/hybrid run examples.hello:app --bind $(HOST):$(PORT) --access-logfile -

# The suite mostly waits on the servers it starts: two processes, one a core,
# run it in half the time, each test file whole (a module's server starts
# once); three were faster still but loaded the machine enough to make
# timing-bound tests flaky. The container tests build an image, the heaviest
# work of all: they run after, alone.
PARALLEL := -n 2 --dist loadfile

test: install-test
	$(BIN)/python -m pytest $(PARALLEL) --ignore=tests/test_container.py $(PYTESTFLAGS)
	$(BIN)/python -m pytest tests/test_container.py $(PYTESTFLAGS) || [ $$? -eq 5 ]

# The inner loop, under 2 minutes here: every test but those both `process` and
# `slow` (the tiers are set in tests/conftest.py). In: the core, the settings,
# the types, the import rules, the docs' tables, and the drivers' tests on the
# servers their modules share (HTTP conformance, WSGI behaviour, WebSockets).
# Out: the image, the wheel, and every test that starts a process of its own
# (a server per test: most of the suite's time). `-m core`: no process at all.
check: install-test
	$(BIN)/python -m pytest $(PARALLEL) -m "not (process and slow)" $(PYTESTFLAGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
