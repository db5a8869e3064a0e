# Set-up is implicit: every target creates the virtual environment .venv first if needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
OUT ?= out

.PHONY: setup demo test bench clean

$(BIN)/featscope: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/featscope

## Render visualizations of the embedded EfficientNet-Lite0 into ./out/ (a few minutes on 2 cores).
demo: setup
	$(BIN)/featscope render _blocks.2:5 _blocks.5:10 _blocks.8:5 _blocks.11:20 _blocks.14:7 \
		logit:espresso "logit:Egyptian Mau" logit:goldfinch --steps 128 --out $(OUT)

## Run the test suite.
test: setup
	$(BIN)/python -m pytest

## Speed benchmark against the raw forward+backward and Lucent (installs Lucent in bench/.lucent-venv).
bench: setup
	$(BIN)/python bench/speed.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
