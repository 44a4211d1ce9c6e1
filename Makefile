PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint bench install contracts messages

# The virtualenv is rebuilt whenever the declared dependencies change.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm install --no-audit --no-fund
	touch $@

install: $(VENV)/.installed node_modules/.installed

run: install
	$(PY) -m kibo.launch

test: install
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# At a million orders (BENCH_ORDERS to change): fills its own database, then prints the table.
bench: install
	$(PY) -m bench.pages
	$(PY) -m bench.lifecycle

# Rebuild the committed ABI/bytecode of the test tokens from escrow/contracts/*.sol.
contracts: node_modules/.installed
	node escrow/contracts/build.mjs

# After changing user-facing strings: update locale/es/.../django.po, translate the new
# entries, then run this again to compile the .mo files (both are committed).
messages: install
	DATABASE_URL=postgres://unused@127.0.0.1/unused REDIS_URL=redis://127.0.0.1 \
	  $(PY) manage.py makemessages -l es --no-location \
	  --ignore=.venv --ignore=node_modules --ignore=tests --ignore=bench
	msgfmt --check -o locale/es/LC_MESSAGES/django.mo locale/es/LC_MESSAGES/django.po
