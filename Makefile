# Both README commands work on a fresh clone: each builds what it needs in .venv.
#   make demo   the runtime extras only (mseplug[all]: torch, JAX, scikit-learn, Dask, pyarrow)
#   make test   adds the dev, docs and engines extras to the same .venv (tests, linters, MkDocs,
#               Spark and Ray for their guides), then the linters, every test not marked
#               `slow`, and the site
#   make test-slow  the tests marked `slow` (launches of real processes, the longest
#               property runs); CI runs it after `make test`
# constraints.txt pins the CPU build of torch for every install, so no multi-GB CUDA build is
# pulled in.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt
RUNTIME := $(VENV)/.installed-runtime
# The Ray guide that `make test` runs starts a local Ray: it sends no usage report.
export RAY_USAGE_STATS_ENABLED := 0
DEVELOP := $(VENV)/.installed-develop

.PHONY: demo test test-slow bench bench-json docs docs-site clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(RUNTIME): pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e ".[all]"
	touch $@

$(DEVELOP): $(RUNTIME)
	$(PIP) -e ".[all,dev,docs,engines]"
	touch $@

demo: $(RUNTIME)
	$(BIN)/mseplug demo

# pytest fails the target on any failure and on exit code 5 ("no tests ran") alike: make stops
# on every non-zero status. Warnings are errors unless pyproject.toml allows them by name.
# `make test` leaves out the tests marked `slow` (so it stays near ten minutes on two cores);
# `make test-slow` runs exactly those, and CI runs both.
test: $(DEVELOP)
	$(BIN)/ruff check mseplug tests benchmarks docs
	$(BIN)/mypy mseplug
	$(BIN)/python -m pytest -q --durations=15 -m "not slow"
	$(MAKE) --no-print-directory docs-site

test-slow: $(DEVELOP)
	$(BIN)/python -m pytest -q --durations=15 -m slow

# The site in site/: figures drawn from mseplug (docs/make_figures.py), then MkDocs with --strict,
# so a broken link, a bad docstring or a missing page fails. The benchmark charts and the measured
# tables are drawn from benchmarks/results/bench.json, which `make bench-json` rewrites: the full
# `mseplug bench --json --scaling` three times, the median of each row (about half an hour on two
# cores; commit the result with the machine and date it records).
docs docs-site: $(DEVELOP)
	$(BIN)/python docs/make_figures.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

bench: $(RUNTIME)
	$(BIN)/mseplug bench

bench-json: $(DEVELOP)
	$(BIN)/python docs/make_figures.py --bench --runs 3

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis site docs/generated build dist
