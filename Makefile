PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Settings load without services for the commands that never connect (makemigrations --check,
# makemessages): the URLs are required, not used.
NO_SERVICES := DATABASE_URL=postgres://unused@127.0.0.1:1/unused REDIS_URL=redis://127.0.0.1:1

.PHONY: run test test-fast check system lint lock bench install contracts messages restore-drill cluster

# The virtualenv holds exactly the locked resolution (requirements/dev.txt: the runtime and
# every dependency group, hashes checked), and is rebuilt when the lock changes.
$(VENV)/.installed: requirements/dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements/dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

# After changing a dependency in pyproject.toml: resolve and lock everything again.
LOCK := $(VENV)/bin/uv pip compile pyproject.toml --generate-hashes --python-version 3.11 --quiet
lock: $(VENV)/.installed
	$(LOCK) --group dev -o requirements/dev.txt
	$(LOCK) -o requirements/runtime.txt

node_modules/.installed: package.json package-lock.json
	npm install --no-audit --no-fund
	touch $@

install: $(VENV)/.installed node_modules/.installed

# Debian's Chromium (the end-to-end tests), gettext (the translation catalogue check),
# Prometheus (promtool tests the alerts; a real Prometheus scrapes a running Kibo),
# pgBackRest with PostgreSQL 15 (the restore drill), PgBouncer (the money tests run through
# it), RabbitMQ (the production broker) and nginx (the cluster run's proxy), installed with
# apt-get when the machine lacks them: as root, or through sudo.
system:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v msgfmt >/dev/null || missing="$$missing gettext"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v pgbackrest >/dev/null || missing="$$missing pgbackrest"; \
	test -x /usr/lib/postgresql/15/bin/initdb || missing="$$missing postgresql-15"; \
	command -v pgbouncer >/dev/null || missing="$$missing pgbouncer"; \
	test -x /usr/sbin/rabbitmq-server || missing="$$missing rabbitmq-server"; \
	test -x /usr/sbin/nginx || missing="$$missing nginx"; \
	if [ -n "$$missing" ]; then \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
	  echo "Installing Debian packages:$$missing"; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing >/dev/null; \
	fi

run: install
	$(PY) -m devtools.launch

# The gates that need no service: lint, format, the import contracts and the types
# (pyproject.toml), migrations in step with the models.
check: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/bandit -q -c pyproject.toml -r kibo orders allies escrow quotes audit
	$(NO_SERVICES) $(VENV)/bin/mypy
	$(NO_SERVICES) $(PY) -W ignore::RuntimeWarning manage.py makemigrations --check --dry-run

# Everything, then again as production runs on more than one machine: the money tests
# through a real PgBouncer in transaction mode, the worker tests against a real RabbitMQ.
test: check system
	$(PY) -m pytest
	KIBO_DB_PGBOUNCER=1 $(PY) -m pytest -m money
	KIBO_EMBEDDED_RABBITMQ=1 $(PY) -m pytest -m workers

# While working: the suite without the slow tests (real workers, browsers, chain pace), in
# under a minute. `make test` runs everything.
test-fast: install system
	$(PY) -m pytest -m "not slow"

lint: check

# At a million orders (BENCH_ORDERS to change): fills its own database, then prints the table.
# Then an order's Web Push to 1,000 online allies (BENCH_PUSH_ALLIES) through real workers.
bench: install
	$(PY) -m bench.pages
	$(PY) -m bench.lifecycle
	$(PY) -m bench.pushes

# Back up, keep working, lose the database, restore it to a point in time, and prove the
# restored Kibo safe before it sends money (devtools/restore_drill.py). Prints its timings.
restore-drill: install system
	$(PY) -m devtools.restore_drill

# Production's arrangement on this machine (a replica, PgBouncer, RabbitMQ, two web servers
# behind nginx, three workers, two beats) under load, losing a worker, the beat leader and a
# web server mid-run (bench/cluster.py). Prints its figures; fails unless every payout and
# refund was made exactly once and escrow reconciles. CLUSTER_SECONDS and others change it.
cluster: install system
	$(PY) -m bench.cluster

# Rebuild the committed ABI/bytecode of the test tokens from devtools/contracts/*.sol.
contracts: node_modules/.installed
	node devtools/contracts/build.mjs

# After changing user-facing strings: update locale/es/.../django.po, translate the new
# entries, then run this again to compile the .mo files (both are committed).
messages: install
	$(NO_SERVICES) $(PY) manage.py makemessages -l es --no-location \
	  --ignore=.venv --ignore=node_modules --ignore=tests --ignore=bench
	msgfmt --check -o locale/es/LC_MESSAGES/django.mo locale/es/LC_MESSAGES/django.po
