# Two entry points, both self-contained on a fresh clone:
#   make demo  - create .venv if missing, install, run the main job on the embedded default
#   make test  - same set-up, then the whole test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test install clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,ray]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/phonetrust demo

# The suite runs on every core (pytest-xdist): about 6 minutes on 2 cores.
test: $(STAMP)
	$(PY) -m pytest -q -n auto

clean:
	rm -rf $(VENV) build dist
