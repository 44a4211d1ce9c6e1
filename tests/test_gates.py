"""`make test` runs the gates a team relies on, and the pre-commit hooks run the same ones."""

import re

import yaml

from kibo.env import BASE_DIR

MAKEFILE = (BASE_DIR / "Makefile").read_text()


def recipe(target: str) -> str:
    match = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", MAKEFILE, re.M)
    assert match, f"no `{target}` target in the Makefile"
    return match[1]


GATES = {
    "ruff check": "ruff check",
    "ruff format": "ruff format --check",
    "import contracts": "lint-imports",
    "types": "mypy",
    "migrations": "makemigrations --check --dry-run",
}


def test_make_test_runs_every_gate_then_the_suite():
    assert re.search(r"^test: check system$", MAKEFILE, re.M)
    for gate, command in GATES.items():
        assert command in recipe("check"), gate
    assert "-m pytest" in recipe("test") and "not slow" not in recipe("test")  # everything


def test_make_test_fast_leaves_out_only_the_tests_marked_slow():
    assert '-m pytest -m "not slow"' in recipe("test-fast")


def test_the_pre_commit_hooks_run_the_same_gates():
    config = yaml.safe_load((BASE_DIR / ".pre-commit-config.yaml").read_text())
    entries = [hook["entry"] for repo in config["repos"] for hook in repo["hooks"]]
    for gate, command in GATES.items():
        assert any(command in entry for entry in entries), gate


def test_ci_is_make_test():
    run = (BASE_DIR / ".ci" / "run").read_text()
    commands = [line for line in run.splitlines() if line and not line.startswith("#")]
    assert commands[-1] == "make test"
