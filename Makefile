# The two commands: `make demo` runs the product on its embedded defaults; `make test` runs the tests.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export NO_MKDOCS_2_WARNING := 1

.PHONY: venv venv-dev demo test test-cluster lint bench-ingest stop

# Two stamps: runtime packages (requirements.txt) for `make demo`, and runtime + tests + lint
# (requirements-dev.txt, which includes requirements.txt) for `make test` and `make lint`.
define venv_create
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
endef

$(VENV)/.installed: requirements.txt
	$(venv_create)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt
	$(venv_create)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

venv-dev: $(VENV)/.installed-dev

# e.g. make demo DEMO_ARGS="--port 8080 --items 10000 --users 3000"
demo: venv
	$(PY) manage.py demo $(DEMO_ARGS)

test: venv-dev
	$(PY) -m pytest $(PYTEST_ARGS)

# The multi-host test (tests/cluster, bench/cluster.py): PostgreSQL primary + streaming replica, Redis, two
# web nodes and a worker, each in its own network namespace. Needs root (ip netns); skips, saying why,
# where namespaces cannot be made. It starts its own servers: no embedded PostgreSQL is needed (nor started:
# tests/cluster/conftest.py).
test-cluster: venv-dev
	$(PY) -m pytest -m cluster tests/cluster -p no:cacheprovider $(CLUSTER_PYTEST_ARGS)

# style, the architecture's import contracts (.importlinter), types (mypy.ini), migrations, and the docs
# site (mkdocs.yml), built with --strict into a temporary directory: a broken link or anchor fails (not
# --quiet: it hides the warnings that --strict counts)
lint: venv-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(PY) manage.py makemigrations --check --dry-run
	site=$$(mktemp -d) && $(VENV)/bin/mkdocs build --strict --site-dir "$$site"; status=$$?; rm -rf "$$site"; exit $$status

# Stops the embedded PostgreSQL (and Redis) if something left them running; Ctrl-C on `make demo` already does.
stop: venv
	$(PY) manage.py services stop
