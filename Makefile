# Set-up and everyday commands. Each target creates the local virtual environment it needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench typecheck clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed  ## convert the embedded sample to out/skull.stl + out/skull.report.json
	mkdir -p out
	$(BIN)/medprint convert samples/head_phantom_ct -o out/skull.stl --preset bone --overwrite

test: $(VENV)/.installed  ## the whole test suite (real-data tests read MEDPRINT_DATA, default ../shared/data)
	$(BIN)/python -m pytest -q -rs -p no:cacheprovider

bench: $(VENV)/.installed  ## speed and memory against dicom2stl (see benchmarks/README.md)
	$(BIN)/python benchmarks/bench_convert.py

typecheck: $(VENV)/.installed  ## mypy over the package (not part of `make test`: stub releases move)
	$(BIN)/pip install --quiet 'mypy>=1.10,<3'
	$(BIN)/python -m mypy medprint

clean:
	rm -rf $(VENV) out
