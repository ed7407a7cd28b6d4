# bingan — the two Quick start commands are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export BINGAN_HOME ?= $(CURDIR)/var
PLUGIN_DIRS := $(sort $(dir $(wildcard plugins/*/pyproject.toml integrations/*/pyproject.toml)))
# The shared npm build step (build-helper/, distribution bingan-build) is a build requirement of
# core and of every plugin that ships npm files; pip's isolated builds find its wheel here.
WHEELHOUSE := $(CURDIR)/$(VENV)/wheelhouse
export PIP_FIND_LINKS := $(WHEELHOUSE)

.PHONY: demo test setup sysdeps sysdeps-check clean docs

setup: $(VENV)/.installed node_modules/.installed

# Core, every plugin and integration of the repo (editable), and the test tools (a plugin's own
# test tools are its `test` extra).
$(VENV)/.installed: pyproject.toml $(addsuffix pyproject.toml,$(PLUGIN_DIRS)) $(WHEELHOUSE)/.built
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]" $(foreach d,$(patsubst %/,%,$(PLUGIN_DIRS)),-e "./$(d)[test]")
	@touch $@

$(WHEELHOUSE)/.built: build-helper/pyproject.toml $(wildcard build-helper/bingan_build/*.py)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	rm -f $(WHEELHOUSE)/bingan_build-*.whl
	$(BIN)/python -m pip wheel -q --no-deps -w $(WHEELHOUSE) ./build-helper
	@touch $@

# Front-end packages from npm, exactly as locked: core's (package.json) and each plugin's own;
# their postinstall copies the files a distribution serves into its package (core/web/vendor,
# bingan_capture/static/vendor), as building the wheel does (setup.py).
NPM_DIRS := . $(patsubst %/package-lock.json,%,$(wildcard plugins/*/package-lock.json integrations/*/package-lock.json))
node_modules/.installed: package.json package-lock.json $(wildcard plugins/*/package*.json integrations/*/package*.json)
	for d in $(NPM_DIRS); do (cd $$d && npm ci --no-audit --no-fund --loglevel=error) || exit 1; done
	@touch $@

demo: setup
	$(BIN)/bingan db upgrade
	$(BIN)/bingan demo load --if-empty
	$(BIN)/bingan serve --host 127.0.0.1 --port 8000

# Debian packages the tests use: Chromium (browser tests and screenshots; Playwright drives the
# system Chromium and downloads nothing), a font that draws Chinese (checked by drawing, with
# core.fonts, as the code chooses it: not just any font fontconfig lists for zh; fonts-noto-cjk
# when none does), fonts-wqy-microhei (tests/test_fonts.py builds a WenQuanYi-only setup),
# fonts-wqy-zenhei, fonts-arphic-uming and -ukai (the imaging page corpus: its tuning and
# validation parts are drawn in different families, bingan_imaging/corpus.py), qpdf
# (PDF checks), sane-utils (the SANE `test` scanner backend), cups and printer-driver-cups-pdf
# (copying prints through a real CUPS queue with the cups-pdf backend; its test starts cupsd).
# Installed only when missing; needs root, as on CI. `make sysdeps-check` only says what is missing.
define sysdeps_missing
missing=""; \
command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
$(BIN)/python -m bingan.core.fonts >/dev/null 2>&1 || missing="$$missing fonts-noto-cjk"; \
dpkg -s fonts-wqy-microhei >/dev/null 2>&1 || missing="$$missing fonts-wqy-microhei"; \
for p in fonts-wqy-zenhei fonts-arphic-uming fonts-arphic-ukai; do \
  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
command -v qpdf >/dev/null 2>&1 || missing="$$missing qpdf"; \
command -v scanimage >/dev/null 2>&1 || missing="$$missing sane-utils"; \
command -v lp >/dev/null 2>&1 && test -x /usr/sbin/cupsd || missing="$$missing cups"; \
test -e /usr/lib/cups/backend/cups-pdf || missing="$$missing printer-driver-cups-pdf";
endef

sysdeps: $(VENV)/.installed
	@$(sysdeps_missing) \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	  || echo "WARNING: could not install$$missing; tests that need them will fail"; \
	fi; \
	$(BIN)/python -m bingan.core.fonts >/dev/null || echo "WARNING: still no font draws Chinese"

sysdeps-check:
	@$(sysdeps_missing) \
	if [ -n "$$missing" ]; then echo "missing Debian packages:$$missing"; \
	  $(BIN)/python -m bingan.core.fonts >/dev/null; exit 1; fi

test: setup sysdeps
	$(BIN)/python -m bingan.hooks.docgen --check
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -n 2 -q -p no:cacheprovider

docs: setup
	$(BIN)/python -m bingan.hooks.docgen > docs/hooks.md

clean:
	rm -rf $(VENV) node_modules var
