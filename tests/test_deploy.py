"""Docker cannot run here, so check what it would run: every command names a real entry point."""

import importlib
import json
import re

import pytest
import yaml
from django.core.management import get_commands

from kibo.env import BASE_DIR

COMPOSE = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())
KIBO_SERVICES = {
    name: service for name, service in COMPOSE["services"].items() if "build" in service
}


def assert_entry_point(command: list[str]) -> None:
    program, *args = command
    if program == "gunicorn":
        module, attribute = args[0].split(":")
        assert callable(getattr(importlib.import_module(module), attribute))
    elif program == "celery":
        assert args[0] == "-A"
        app = importlib.import_module(args[1]).celery_app
        assert args[2] in {"worker", "beat"}
        assert app.main == "kibo"
    elif program == "python":
        assert args[0] == "manage.py" and (BASE_DIR / "manage.py").exists()
        assert args[1] in get_commands()
    else:
        pytest.fail(f"unknown program {program!r}")


def test_compose_runs_postgres_redis_web_worker_and_beat():
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(COMPOSE["services"])
    assert {"web", "worker", "beat"} <= set(KIBO_SERVICES)


@pytest.mark.parametrize("name", sorted(KIBO_SERVICES))
def test_every_kibo_service_command_names_a_real_entry_point(name):
    service = KIBO_SERVICES[name]
    assert service["environment"]["DJANGO_SETTINGS_MODULE"] == "kibo.settings.production"
    assert_entry_point(service["command"])


def test_the_image_default_command_is_a_real_entry_point():
    dockerfile = (BASE_DIR / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE).group(1)
    assert_entry_point(json.loads(cmd))


def test_every_setting_the_services_need_is_passed_by_compose():
    required = {
        "DATABASE_URL",
        "REDIS_URL",
        "DJANGO_SECRET_KEY",
        "KIBO_ESCROW_ADDRESS",
        "KIBO_S3_BUCKET",
    }
    for service in KIBO_SERVICES.values():
        assert required <= set(service["environment"])


def test_only_the_worker_is_given_the_escrow_key():
    given = {
        name
        for name, service in KIBO_SERVICES.items()
        if "KIBO_ESCROW_PRIVATE_KEY" in service["environment"]
    }
    assert given == {"worker"}


def test_every_periodic_task_beat_runs_is_a_task_the_worker_knows():
    from django.conf import settings

    from kibo.celery import app

    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert scheduled and scheduled <= set(app.tasks)


def test_the_image_installs_exactly_the_runtime_lock():
    dockerfile = (BASE_DIR / "Dockerfile").read_text()
    assert "pip install --no-cache-dir --require-hashes -r requirements/runtime.txt" in dockerfile
    assert "--no-deps -e ." in dockerfile


def test_the_worker_consumes_every_queue_tasks_are_routed_to():
    from django.conf import settings

    command = COMPOSE["services"]["worker"]["command"]
    queues = command[command.index("--queues") + 1].split(",")
    assert set(queues) == {queue.name for queue in settings.CELERY_TASK_QUEUES}


def test_the_web_tier_runs_with_the_gunicorn_settings_that_keep_metrics_right():
    command = COMPOSE["services"]["web"]["command"]
    config = BASE_DIR / command[command.index("-c") + 1]
    assert config.exists()
    environment = COMPOSE["services"]["web"]["environment"]
    assert environment["PROMETHEUS_MULTIPROC_DIR"]
