# Two commands do all set-up: `make demo` trains on the embedded data, `make test` runs the tests.
# Each creates the virtual environment .venv first if it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: the project's torch range is then met and no other build is fetched
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/centaur train data/emoji --out models/emoji
	$(BIN)/centaur predict models/emoji data/emoji/animal data/emoji/food --top-k 2 | head -n 5
	$(BIN)/centaur report models/emoji data/emoji

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

# The web page tests drive Debian's Chromium; install it when missing (needs root and apt).
browser:
	@command -v chromium >/dev/null || (apt-get install -y -q chromium >/dev/null 2>&1 || \
	  (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1)) || \
	  echo "note: could not install chromium; the browser tests will be skipped"

bench: $(STAMP)
	bash bench/run.sh

clean:
	rm -rf $(VENV) models runs .pytest_cache
