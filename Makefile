# bingan — the two Quick start commands are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export BINGAN_HOME ?= $(CURDIR)/var
PLUGIN_DIRS := $(sort $(dir $(wildcard plugins/*/pyproject.toml integrations/*/pyproject.toml)))

.PHONY: demo test setup browser clean docs

setup: $(VENV)/.installed node_modules/.installed

# Core, every plugin and integration of the repo (editable), and the test tools.
$(VENV)/.installed: pyproject.toml $(addsuffix pyproject.toml,$(PLUGIN_DIRS))
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]" $(addprefix -e ./,$(PLUGIN_DIRS))
	@touch $@

# Front-end packages from npm, exactly as locked.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

demo: setup
	$(BIN)/bingan db upgrade
	$(BIN)/bingan demo load --if-empty
	$(BIN)/bingan serve --host 127.0.0.1 --port 8000

# Headless Chromium and CJK fonts for the browser tests and screenshots (Debian packages;
# Playwright drives the system Chromium, it downloads no browser).
browser:
	@{ command -v chromium >/dev/null 2>&1 && fc-list :lang=zh 2>/dev/null | grep -q . ; } || { \
	  echo "installing Debian chromium and fonts-noto-cjk for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null) \
	  || echo "WARNING: could not install chromium; browser tests will fail"; }

test: setup browser
	$(BIN)/python -m hooks.docgen --check
	$(BIN)/pytest -n 2 -q -p no:cacheprovider

docs: setup
	$(BIN)/python -m hooks.docgen > docs/hooks.md

clean:
	rm -rf $(VENV) node_modules var
