"""The structure the tools keep: the import contracts (pyproject.toml, lint-imports), every
module placed in a layer, locks taken only through the locks modules, no import hidden in a
function to dodge a cycle, and the ports connected."""

import ast
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from kibo.env import BASE_DIR
from kibo.ports import Port, PortNotConnected

APPS = ("kibo", "audit", "quotes", "allies", "escrow", "orders")
CONTRACTS = tomllib.loads((BASE_DIR / "pyproject.toml").read_text())["tool"]["importlinter"]


def app_modules() -> set[str]:
    """Every module of the six apps, by dotted name (a package counts as its children)."""
    modules = set()
    for app in APPS:
        for path in (BASE_DIR / app).rglob("*.py"):
            relative = path.relative_to(BASE_DIR).with_suffix("")
            if "migrations" in relative.parts or relative.name == "__init__":
                continue
            modules.add(".".join(relative.parts))
    return modules


def layered_modules() -> list[str]:
    (layers,) = [c["layers"] for c in CONTRACTS["contracts"] if c["id"] == "layers"]
    return [name.strip() for layer in layers for name in re.split(r"[:|]", layer)]


def test_every_module_of_the_apps_is_in_exactly_one_layer():
    # given the layers contract
    placed = layered_modules()
    # then no module is named twice, and every module is named or inside a named package
    assert len(placed) == len(set(placed))
    unplaced = {
        module
        for module in app_modules()
        if not any(module == name or module.startswith(name + ".") for name in placed)
    }
    assert not unplaced, f"place these modules in a layer of pyproject.toml: {sorted(unplaced)}"


def lint_imports(cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [Path(sys.executable).parent / "lint-imports", "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory):
    """The packages the contracts name and pyproject.toml, in a directory of their own."""
    root = tmp_path_factory.mktemp("project")
    for package in CONTRACTS["root_packages"]:
        shutil.copytree(
            BASE_DIR / package, root / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(BASE_DIR / "pyproject.toml", root)
    return root


@pytest.mark.slow  # lint-imports over a copy of the project
def test_the_import_contracts_hold(project_copy):
    result = lint_imports(project_copy)
    assert result.returncode == 0, result.stdout


@pytest.mark.slow  # lint-imports over a copy of the project
@pytest.mark.parametrize(
    ("module", "source", "broken"),
    [
        # a lower layer reaching up: escrow telling the order workflow directly
        ("escrow/settle.py", "from orders.services import order_release_record\n", "layers"),
        # the foundation reaching an app above it
        ("kibo/blocking.py", "from orders.blocking import wallet_block\n", "layers"),
        # escrow's domain importing an interface (a task) instead of sending it by name
        ("escrow/enqueue.py", "from escrow.tasks import process_transfers\n", "layers"),
        # a second module talking to web3
        ("orders/gas.py", "from web3 import Web3\n", "one-web3-module"),
    ],
)
def test_a_back_edge_fails_the_contracts_and_is_named(project_copy, module, source, broken):
    # given a module that imports against the direction, placed in the layer of its app
    path = project_copy / module
    path.write_text(source)
    config = project_copy / "pyproject.toml"
    original = config.read_text()
    app, name = module.removesuffix(".py").split("/")
    config.write_text(original.replace(f"{app}.services :", f"{app}.services : {app}.{name} :", 1))
    try:
        # when the contracts are checked
        result = lint_imports(project_copy)
    finally:
        path.unlink()
        config.write_text(original)
    # then they fail, naming the import
    assert result.returncode != 0
    imported = source.split()[1]
    assert f"{app}.{name} -> {imported}" in result.stdout, result.stdout
    (name,) = [c["name"] for c in CONTRACTS["contracts"] if c["id"] == broken]
    assert f"{name} BROKEN" in " ".join(result.stdout.split())


def source_files():
    for app in APPS:
        for path in (BASE_DIR / app).rglob("*.py"):
            if "migrations" not in path.parts:
                yield path


def test_rows_are_locked_only_through_the_locks_modules():
    outside = [
        str(path.relative_to(BASE_DIR))
        for path in source_files()
        if path.name != "locks.py"
        and re.search(r"select_for_update|FOR UPDATE", path.read_text(), re.IGNORECASE)
    ]
    assert not outside, f"take row locks through a locks.py helper: {outside}"


# An import inside a function is for a heavy optional import, or for Django's rule that an
# app's models load only once every app is registered (AppConfig.ready) — never to dodge a
# cycle.
LOCAL_IMPORTS_ALLOWED = {
    ("orders/views.py", "zxingcpp"),  # large; only a QR screenshot needs it
    ("orders/apps.py", "orders.payments"),
    ("orders/apps.py", "orders.selectors"),
    ("kibo/apps.py", "kibo"),  # kibo.checks
}


def test_no_import_hides_inside_a_function():
    found = set()
    for path in source_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Import):
                        names = [alias.name for alias in inner.names]
                    elif isinstance(inner, ast.ImportFrom):
                        names = [inner.module]
                    else:
                        continue
                    for name in names:
                        found.add((str(path.relative_to(BASE_DIR)), name))
    assert found == LOCAL_IMPORTS_ALLOWED


def test_the_ports_are_connected_and_one_left_unconnected_fails_loudly():
    from allies.ports import payers_orders
    from escrow.outcomes import outcomes
    from orders.payments import OrderOutcomes
    from orders.selectors import OrdersOfPayers

    assert isinstance(outcomes(), OrderOutcomes)
    assert isinstance(payers_orders(), OrdersOfPayers)
    with pytest.raises(PortNotConnected, match="Nothing is connected to nowhere"):
        Port("nowhere")()


def test_tests_share_helpers_through_tests_helpers_never_through_other_test_modules():
    shared = ("tests.helpers", "tests.factories")
    found = []
    for path in (BASE_DIR / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            if module and module.startswith("tests") and not module.startswith(shared):
                found.append(f"{path.relative_to(BASE_DIR)}: {module}")
    assert not found, found
