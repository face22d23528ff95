# `make test` runs the whole test suite, `make demo` runs the demo (see docs/development.md).
.PHONY: help setup test demo lint bench

help:  ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z]+):.*## /  make \1\t/'

setup:  ## create .venv, install Python/npm deps and the Debian packages tests need
	bash scripts/setup.sh

test:  ## run the whole test suite (npm test + pytest); PYTEST_ARGS="-x -k foo" to narrow
	bash scripts/setup.sh && bash scripts/test.sh $(PYTEST_ARGS)

demo:  ## run the demo app
	bash scripts/setup.sh --demo && .venv/bin/python -m demo_app

lint:  ## ruff check, ruff format --check, mypy
	bash scripts/setup.sh --no-system
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

bench:  ## run the benchmarks
	bash scripts/setup.sh && .venv/bin/python -m bench
