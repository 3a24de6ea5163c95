# The README's two commands are `make lab` and `make test`; both create .venv on first use.

PYTHON3   ?= python3
VENV      ?= .venv
PY        := $(VENV)/bin/python
PIP       := $(VENV)/bin/pip
STAMP     := $(VENV)/.installed
RUFF      := $(VENV)/bin/ruff
MYPY      := $(VENV)/bin/mypy
PYTEST    := $(VENV)/bin/pytest
JUPYTER   := $(VENV)/bin/jupyter

NOTEBOOK  := notebooks/supervisor_replication.ipynb
NOTEBOOKS := $(wildcard notebooks/*.ipynb)
# Only the source folders that exist yet.
SRC_DIRS  := $(wildcard summarizer tests benchmarks)

# `--nbval` makes pytest also collect every *.ipynb under the paths it is given;
# the normal test_*.py collection of `tests` still runs in the same invocation.
# `--nbval-current-env` runs notebooks in this venv's Python, whatever kernelspec
# the notebook names. The notebooks are only passed when one exists.
NBVAL_ARGS := $(if $(NOTEBOOKS),notebooks --nbval --nbval-current-env \
	$(if $(wildcard notebooks/sanitize.cfg),--nbval-sanitize-with notebooks/sanitize.cfg))

LAB_ARGS    ?=
PYTEST_ARGS ?=

.PHONY: all lab test system-deps lint format notebook-outputs bench clean venv

all: test

# --- environment -------------------------------------------------------------

$(PY):
	$(PYTHON3) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip

# Reinstall whenever the dependencies in pyproject.toml change.
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install -e '.[dev]'
	touch $@

# The project's JupyterLab settings (no news popup, no update check), installed
# into the venv's JupyterLab, where every user's settings start from them.
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json
$(LAB_OVERRIDES): jupyterlab/overrides.json $(STAMP)
	mkdir -p $(dir $@)
	cp jupyterlab/overrides.json $@

venv: $(STAMP) $(LAB_OVERRIDES)

# Debian's chromium for the browser test (we never run `playwright install`) and
# Debian's postgresql for the PostgresSink tests (they start their own server).
system-deps:
	@MISSING=""; \
	command -v chromium >/dev/null 2>&1 || MISSING="chromium fonts-dejavu-core"; \
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || MISSING="$$MISSING postgresql"; \
	if [ -n "$$MISSING" ]; then \
		if ! command -v apt-get >/dev/null 2>&1; then \
			echo "system-deps: $$MISSING not found and no apt-get to install them; install them for the browser and PostgreSQL tests" >&2; \
			exit 0; \
		fi; \
		SUDO=""; \
		if [ "$$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=sudo; fi; \
		echo "system-deps: installing$$MISSING with apt-get"; \
		$$SUDO apt-get update && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y $$MISSING; \
	fi

# --- the two README commands ---------------------------------------------------

# Trust the project's notebooks first: JupyterLab renders the widget views stored in
# a notebook only when it is trusted. `--allow-root` only when running as root
# (containers, many cloud notebooks). The server prints the URL to open.
ROOT_ARGS := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: $(STAMP) $(LAB_OVERRIDES)
	$(JUPYTER) trust $(or $(NOTEBOOKS),$(NOTEBOOK))
	$(JUPYTER) lab $(NOTEBOOK) $(ROOT_ARGS) $(LAB_ARGS)

test: system-deps lint $(LAB_OVERRIDES)
	$(PYTEST) $(wildcard tests) $(NBVAL_ARGS) -p no:cacheprovider $(PYTEST_ARGS)

# --- the rest ------------------------------------------------------------------

lint: $(STAMP)
	$(RUFF) check $(SRC_DIRS)
	$(RUFF) format --check $(SRC_DIRS)
	$(MYPY) summarizer

format: $(STAMP)
	$(RUFF) check --select I --fix $(SRC_DIRS)
	$(RUFF) format $(SRC_DIRS)

# Regenerate the stored outputs from a fresh kernel (what nbval compares against),
# with the widgets' state, so the views render on open; then trust the result.
notebook-outputs: $(STAMP)
	$(JUPYTER) nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.timeout=300 --ExecutePreprocessor.store_widget_state=True \
		$(or $(NOTEBOOKS),$(NOTEBOOK))
	$(JUPYTER) trust $(or $(NOTEBOOKS),$(NOTEBOOK))

bench: $(STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
	find . -name .ipynb_checkpoints -type d -prune -not -path './.git/*' -exec rm -rf {} +
