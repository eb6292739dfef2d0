# `make demo` and `make test` each build .venv when it is missing, install costkit into it (with the test
# extra: pytest, selenium, pypdf), and run. The browser tests need Debian's chromium and chromium-driver
# (.ci/run installs them); without them they skip with one summary line.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.costkit-installed

# The credential chain probes 100.100.100.200 when it finds no credentials; keep everything on loopback.
export ALIBABA_CLOUD_ECS_METADATA_DISABLED := true
export NO_PROXY := 127.0.0.1,localhost
unexport HTTP_PROXY HTTPS_PROXY http_proxy https_proxy

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/costkit demo

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/collect.py
	$(BIN)/python bench/cost.py

clean:
	rm -rf $(VENV) demo-output build *.egg-info bench/.data
