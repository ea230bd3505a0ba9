# Two entry points (see README): `make demo` and `make test`. Both create .venv and install optiland on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean mutation

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

# Mutation testing of the model's allowed set, its builds and the checker (pyproject.toml [tool.mutmut]); long, so
# not part of `make test`. The score and the surviving mutants judged equivalent are in README ("Mutation testing").
mutation: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test,mutation]'
	$(BIN)/mutmut run --max-children 2
	$(BIN)/mutmut results --all true > mutation-results.txt; tail -5 mutation-results.txt

lint: $(STAMP)
	$(BIN)/ruff check optiland tests examples

clean:
	rm -rf $(VENV) out mutants
