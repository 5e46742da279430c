# The two set-up commands of the README: `make demo` and `make test`.
# Each one creates .venv when it is missing and installs what it needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean system-packages

# Debian packages the tests use: redis-server (the Store's Redis tests), xmlsec1 (pysaml2 as
# a real SP verifies signatures with it), chromium (browser tests, driven by playwright), and
# SimpleSAMLphp 1.19 (bookworm) as a real IdP under `php -S` (tests/test_simplesamlphp.py): it
# needs php-cli, and php-xml for DOM, which the simplesamlphp package does not depend on.
# Installed only when missing; needs root and apt. package:command pairs; an absolute path instead
# of a command is a file the package installs (simplesamlphp and php-xml put no command on PATH;
# dom.ini is bookworm's PHP 8.2's).
SYSTEM_PACKAGES := redis-server:redis-server xmlsec1:xmlsec1 chromium:chromium \
	simplesamlphp:/usr/share/simplesamlphp/www/saml2/idp/SSOService.php php-cli:php \
	php-xml:/usr/share/php8.2-xml/xml/dom.ini

# Quiet: pip's output goes to $(VENV)/install.log, shown only when the install fails, so that the
# first thing `make demo` prints after this line is the demo report.
PIP_QUIET := --quiet --disable-pip-version-check
$(STAMP): pyproject.toml
	@echo "Installing into $(VENV) (pip's output: $(VENV)/install.log) ..."
	@$(PY) -m venv $(VENV)
	@{ $(BIN)/pip install $(PIP_QUIET) --upgrade pip && $(BIN)/pip install $(PIP_QUIET) -e '.[test]'; } \
		>$(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; echo "make: the install failed (above)"; exit 1; }
	@touch $(STAMP)

# The validator's report on the demo partner, then the test IdP on embedded defaults
# (http://127.0.0.1:8080/, two demo personas; Ctrl-C stops it).
demo: $(STAMP)
	@$(BIN)/saml-validate demo
	@echo "The test IdP on http://127.0.0.1:8080/ (Ctrl-C stops it):"
	@$(BIN)/saml-idp serve

lint: $(STAMP)
	$(BIN)/ruff check metadata idp validator tests bench fuzz
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

system-packages:
	@missing=""; for pair in $(SYSTEM_PACKAGES); do found="$${pair#*:}"; \
		case "$$found" in /*) [ -e "$$found" ];; *) command -v "$$found" >/dev/null 2>&1;; esac \
			|| missing="$$missing $${pair%%:*}"; done; \
	if [ -n "$$missing" ]; then \
		if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
			echo "installing:$$missing"; apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
		else echo "cannot install$$missing (needs root and apt-get): the tests that need them will skip"; fi; \
	fi

test: $(STAMP) system-packages lint
	$(BIN)/pytest

# The quick loop: everything but the `slow` and `interop` tests (markers in pyproject.toml, given per
# module in tests/conftest.py), on two workers, one test file each at a time (module fixtures are
# made once); under 90 s on a 2-core machine. `make test` runs them all, as CI does.
.PHONY: test-fast
test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow and not interop" -n 2 --dist loadfile

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info

# The container image (docs/deploy.md). The wheels of the project and of every dependency are built
# here first (build/wheels, git-ignored), then `docker build` runs with no network inside: it copies
# them in. BASE selects the base image, any with CPython 3.11 (the host's wheels are for 3.11), e.g.
# `make image BASE=saml-preflight-base:bookworm`: a Debian root from debootstrap, where no image
# registry is reachable (docs/deploy.md, "No image registry"). async-timeout is named because redis
# needs it on Python < 3.11.3, which Debian bookworm's 3.11.2 is and a newer host 3.11 is not.
# The install stage's image, left untagged by the legacy builder, is removed after each build.
BASE ?= python:3.11-slim
IMAGE ?= saml-preflight:local
DOCKER ?= docker
.PHONY: image
image: $(STAMP)
	rm -rf build/wheels
	$(BIN)/pip wheel --quiet --disable-pip-version-check --wheel-dir build/wheels . 'async-timeout>=4.0.3'
	$(DOCKER) build --force-rm --network=none --build-arg BASE=$(BASE) --tag $(IMAGE) .
	$(DOCKER) image prune --force --filter label=saml-preflight.stage=install >/dev/null
