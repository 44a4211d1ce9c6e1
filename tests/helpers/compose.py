"""docker-compose.yml as `docker compose` would run it, read without Docker: the YAML (merge
keys included), variables interpolated as Compose does, env files, profiles.

Compose interpolates every service before it picks the profiles' (a `${VAR:?}` of a service
never started still stops `up`), and a variable of the shell wins over one of an env file.
"""

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from kibo.env import BASE_DIR

COMPOSE_FILE = BASE_DIR / "docker-compose.yml"
NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")


class MissingVariable(Exception):
    """A `${VAR:?message}` (or `${VAR?message}`) whose variable has no value."""


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """`$$`, `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}` and
    `${VAR?message}`, defaults and messages themselves interpolated, as Compose reads them."""
    out: list[str] = []
    i = 0
    while i < len(text):
        dollar = text.find("$", i)
        if dollar < 0:
            out.append(text[i:])
            break
        out.append(text[i:dollar])
        rest = text[dollar + 1 :]
        if rest.startswith("$"):
            out.append("$")
            i = dollar + 2
        elif rest.startswith("{"):
            end = _closing_brace(text, dollar + 1)
            out.append(_substitute(text[dollar + 2 : end], variables))
            i = end + 1
        elif named := NAME.match(rest):
            out.append(variables.get(named.group(), ""))
            i = dollar + 1 + named.end()
        else:
            raise ValueError(f"invalid interpolation format in {text!r}")
    return "".join(out)


def _closing_brace(text: str, opening: int) -> int:
    depth = 0
    for at in range(opening, len(text)):
        if text[at] == "{":
            depth += 1
        elif text[at] == "}":
            depth -= 1
            if depth == 0:
                return at
    raise ValueError(f"unclosed ${{ in {text!r}")


def _substitute(inside: str, variables: Mapping[str, str]) -> str:
    named = NAME.match(inside)
    if named is None:
        raise ValueError(f"invalid interpolation format: ${{{inside}}}")
    name, operation = named.group(), inside[named.end() :]
    value = variables.get(name)
    for operator in (":-", "-", ":?", "?"):
        if operation.startswith(operator):
            argument = interpolate(operation[len(operator) :], variables)
            unset = value is None or (operator.startswith(":") and value == "")
            if not unset:
                return value or ""
            if operator.endswith("-"):
                return argument
            raise MissingVariable(f"required variable {name} is missing a value: {argument}")
    if operation:
        raise ValueError(f"invalid interpolation format: ${{{inside}}}")
    return value or ""


def env_file_read(path: Path, environment: Mapping[str, str]) -> dict[str, str]:
    """An env file's `NAME=value` lines (unquoted values only; `#` starts a comment line),
    each value interpolated with the shell's variables first, then the file's lines above."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, equals, value = line.partition("=")
        if not equals or not NAME.fullmatch(name) or value[:1] in ("'", '"') or " #" in value:
            raise ValueError(f"{path.name}:{number}: this reader takes NAME=value, unquoted")
        values[name] = interpolate(value, {**values, **environment})
    return values


def _interpolated(node: Any, variables: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, variables)
    if isinstance(node, dict):
        return {key: _interpolated(value, variables) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolated(value, variables) for value in node]
    return node


def arrangement(
    environment: Mapping[str, str],
    *,
    env_files: Iterable[Path] = (),
    profiles: Iterable[str] | None = None,
) -> dict[str, dict]:
    """The services `docker compose [--env-file F]... [--profile P]... up` starts, with every
    variable interpolated: the shell's `environment` wins over the env files'; without
    `--profile`, COMPOSE_PROFILES (from either) names the profiles."""
    variables: dict[str, str] = {}
    for path in env_files:
        variables |= env_file_read(path, environment)
    variables |= environment
    if profiles is None:
        profiles = [p for p in variables.get("COMPOSE_PROFILES", "").split(",") if p]
    active = set(profiles)
    model = _interpolated(yaml.safe_load(COMPOSE_FILE.read_text()), variables)
    return {
        name: service
        for name, service in model["services"].items()
        if not service.get("profiles") or active & set(service["profiles"])
    }
