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

## The main job: a browsable gallery of the embedded EfficientNet-Lite0 in ./out/gallery/
## (open index.html; about two minutes on 2 cores): 5 layers from low to high, 6 units each,
## 3 classes, with dataset examples from scikit-image's sample photos. Re-running resumes.
demo: setup
	$(BIN)/featscope gallery --count 5 --per-layer 6 --steps 64 \
		--classes "espresso,goldfinch,volcano" \
		--images "$$($(BIN)/python -c 'import skimage.data, os; print(os.path.dirname(skimage.data.__file__))')" \
		--out $(OUT)/gallery

gallery: demo

## Run the test suite.
test: setup
	$(BIN)/python -m pytest

## Speed benchmark against the raw forward+backward and Lucent (installs Lucent in bench/.lucent-venv).
bench: setup
	$(BIN)/python bench/speed.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
