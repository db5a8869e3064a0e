# Set-up is implicit: every target creates the virtual environment .venv first if needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
OUT ?= out

.PHONY: setup demo gallery test bench clean

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

## A browsable gallery of the embedded model in ./out/gallery/ (open index.html; a few minutes
## on 2 cores): 5 layers from low to high, 6 units each, 3 classes, with dataset examples from
## scikit-image's sample photos. Re-running resumes from the cache.
gallery: setup
	$(BIN)/featscope gallery --count 5 --per-layer 6 --steps 64 --size 160 \
		--classes "espresso,goldfinch,volcano" \
		--images "$$($(BIN)/python -c 'import skimage.data, os; print(os.path.dirname(skimage.data.__file__))')" \
		--out $(OUT)/gallery

## Run the test suite.
test: setup
	$(BIN)/python -m pytest

## Speed benchmark against the raw forward+backward and Lucent (installs Lucent in bench/.lucent-venv).
bench: setup
	$(BIN)/python bench/speed.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
