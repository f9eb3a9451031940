# The two commands of the README. Each sets up .venv first (idempotent, CPU PyTorch only).
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo lint docs test test-fast

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/eft-eval demo

# Two workers, whole files per worker (--dist loadfile keeps a file's fixtures in one process):
# most tests wait on subprocesses and servers, so two workers halve the wall time on 2 cores.
PYTEST_WORKERS ?= 2

# Style and types, as CI checks them (`make test` runs it first; settings in pyproject.toml).
# The layers (import-linter contracts in pyproject.toml) are checked here and by tests/test_layers.py.
lint: setup
	.venv/bin/ruff check eft_eval tests
	.venv/bin/mypy
	.venv/bin/lint-imports --no-logo
	$(DOCS_BUILD)

# The documentation site (mkdocs.yml, docs/) into site/; --strict: a broken link, a missing page or
# an API name mkdocstrings cannot find fails the build. Part of `make lint`, so CI checks it.
DOCS_BUILD = NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet
docs: setup
	$(DOCS_BUILD)

test: setup lint
	bash scripts/install_test_system_deps.sh
	.venv/bin/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile

# The inner loop: every test but the slowest (marked `slow`: real subprocesses, servers, a browser).
# `make test` (and CI) still runs them all.
test-fast: setup
	.venv/bin/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile -m "not slow"
