# Two entry points (see README): `make demo` and `make test`. Both create .venv and install optiland on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/optiland solve instances/huanjiang-demo/scenario.toml --out out/huanjiang-demo
	$(BIN)/optiland check out/huanjiang-demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check optiland tests examples

clean:
	rm -rf $(VENV) out
