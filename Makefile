# The two promises of the README: `make run` and `make test`, each from a fresh Debian machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= dangan-data
RUN_PACKAGES := tesseract-ocr tesseract-ocr-chi-sim tesseract-ocr-osd fonts-wqy-microhei
TEST_PACKAGES := $(RUN_PACKAGES) postgresql chromium

.PHONY: run test check lint format system-run system-test venv clean

# System packages, installed only when something is missing (needs root or sudo).
system-run: APT_PACKAGES = $(RUN_PACKAGES)
system-test: APT_PACKAGES = $(TEST_PACKAGES)
system-run system-test:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(BIN)/dangan: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

venv: $(BIN)/dangan

# Start dangan on its embedded default: SQLite + two local vault directories under $(DATA).
run: system-run venv
	@mkdir -p $(DATA) && chmod 700 $(DATA)
	@test -s $(DATA)/admin-password || (umask 077; $(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(18))' > $(DATA)/admin-password)
	@$(BIN)/dangan --data-dir $(DATA) init --admin admin --password-file $(DATA)/admin-password
	@echo "the first admin is 'admin'; the password is in $(DATA)/admin-password"
	$(BIN)/dangan --data-dir $(DATA) serve

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

check: lint
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not pg and not s3" tests/unit

# Two workers (the CI machine has 2 cores); a file's tests stay on one worker, so a module's
# archive is built once and no two tests of a file race over it.
test: system-test venv lint
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile $(PYTEST_ARGS)

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
