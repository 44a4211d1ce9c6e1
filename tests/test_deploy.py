"""Docker cannot run here, so check what it would run: every command names a real entry point,
and each arrangement of docker-compose.yml (one host; production, with deploy/production.env)
wires the processes as README: Deploy says, read as `docker compose` reads it."""

import importlib
import json
import re
from urllib.parse import urlsplit

import pytest
import yaml
from django.conf import settings
from django.core.management import get_commands

from kibo.env import BASE_DIR, env
from tests.helpers.compose import MissingVariable, arrangement, interpolate

COMPOSE = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())
KIBO_SERVICES = {
    name: service for name, service in COMPOSE["services"].items() if "build" in service
}
PRODUCTION_ENV = BASE_DIR / "deploy" / "production.env"
NGINX = (BASE_DIR / "deploy" / "nginx" / "kibo.conf").read_text()

# The shell of an operator who followed README: Deploy. Compose asks for a variable of every
# service, a profile's too when it is off (GRAFANA_ADMIN_PASSWORD, for `monitoring`).
SECRETS = {
    "POSTGRES_PASSWORD": "postgres-password",
    "DJANGO_SECRET_KEY": "django-secret-key",
    "KIBO_ESCROW_ADDRESS": "0x00000000000000000000000000000000000000e5",
    "KIBO_ESCROW_PRIVATE_KEY": "escrow-private-key",
    "KIBO_S3_BUCKET": "kibo-media",
    "KIBO_TLS_DIR": "/etc/kibo/tls",
    "KIBO_VAPID_PRIVATE_KEY": "vapid-private-key",
    "GRAFANA_ADMIN_PASSWORD": "grafana-password",
}
PRODUCTION_SECRETS = {
    "RABBITMQ_PASSWORD": "rabbitmq-password",
    "POSTGRES_REPLICATION_PASSWORD": "replication-password",
}
ONE_HOST = arrangement(SECRETS)
PRODUCTION = arrangement(SECRETS | PRODUCTION_SECRETS, env_files=[PRODUCTION_ENV])
ARRANGEMENTS = {"one host": ONE_HOST, "production": PRODUCTION}
SCALABLE = ("web", "worker", "notifier")
EVERY_PROFILE = ["production", "monitoring"]


def kibo_processes(services: dict) -> dict:
    """The services that run Kibo's image long-lived: web, the workers, the beats."""
    return {name: s for name, s in services.items() if "build" in s and name != "migrate"}


def celery(services: dict, program: str) -> dict[str, list[str]]:
    """Each service running `celery ... <program>`, with its command."""
    return {
        name: s["command"]
        for name, s in services.items()
        if s.get("command", [None])[0] == "celery" and program in s["command"]
    }


def queues(command: list[str]) -> set[str]:
    return set(command[command.index("--queues") + 1].split(","))


def flag(value: str) -> bool:
    return value.lower() in env.BOOLEAN_TRUE_STRINGS  # as Django's settings read it


def deploy_section() -> str:
    readme = (BASE_DIR / "README.md").read_text()
    return readme.split("\n## Deploy\n", 1)[1].split("\n## ", 1)[0]


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


# --- the reading of the compose file (tests/helpers/compose.py) ---------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${A}", "a"),
        ("$A/b", "a/b"),
        ("$$A", "$A"),
        ("x${UNSET}y", "xy"),
        ("${UNSET:-d}", "d"),
        ("${EMPTY:-d}", "d"),
        ("${EMPTY-d}", ""),
        ("${UNSET-d}", "d"),
        ("${UNSET:-${A}b}", "ab"),
        ("${A:?say so}", "a"),
        ("${EMPTY?say so}", ""),
    ],
)
def test_variables_are_read_as_compose_reads_them(text, expected):
    assert interpolate(text, {"A": "a", "EMPTY": ""}) == expected


@pytest.mark.parametrize("text", ["${UNSET:?say so}", "${EMPTY:?say so}", "${UNSET?say so}"])
def test_a_required_variable_without_a_value_stops_compose(text):
    with pytest.raises(MissingVariable, match="say so"):
        interpolate(text, {"EMPTY": ""})


def test_the_shell_wins_over_the_env_file():
    shell = SECRETS | PRODUCTION_SECRETS | {"KIBO_DATABASE_HOST": "elsewhere"}
    services = arrangement(shell, env_files=[PRODUCTION_ENV])
    assert urlsplit(services["web"]["environment"]["DATABASE_URL"]).hostname == "elsewhere"


# --- the processes and their entry points --------------------------------------------------


def test_compose_runs_the_proxy_web_the_workers_and_beat_on_postgres_and_redis():
    assert {"postgres", "redis", "proxy", "web", "worker-chain", "worker", "notifier", "beat"} <= (
        set(COMPOSE["services"])
    )
    assert {"web", "worker-chain", "worker", "notifier", "beat"} <= set(KIBO_SERVICES)


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


def test_every_periodic_task_beat_runs_is_a_task_the_worker_knows():
    from kibo.celery import app

    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert scheduled and scheduled <= set(app.tasks)


def test_the_image_installs_exactly_the_runtime_lock():
    dockerfile = (BASE_DIR / "Dockerfile").read_text()
    assert "pip install --no-cache-dir --require-hashes -r requirements/runtime.txt" in dockerfile
    assert "--no-deps -e ." in dockerfile


def test_the_web_tier_runs_with_the_gunicorn_settings_that_keep_metrics_right():
    command = COMPOSE["services"]["web"]["command"]
    config = BASE_DIR / command[command.index("-c") + 1]
    assert config.exists()
    environment = COMPOSE["services"]["web"]["environment"]
    assert environment["PROMETHEUS_MULTIPROC_DIR"]


# --- the two arrangements ------------------------------------------------------------------


def test_one_host_runs_without_the_profile_and_without_its_secrets():
    assert set(arrangement(SECRETS)) == {
        "postgres",
        "redis",
        "migrate",
        "proxy",
        "web",
        "worker-chain",
        "worker",
        "notifier",
        "beat",
    }


def test_the_env_file_turns_on_the_production_profile_and_needs_its_secrets():
    assert set(PRODUCTION) - set(ONE_HOST) == {
        "pgbouncer",
        "postgres-replica",
        "rabbitmq",
        "beat-standby",
    }
    for name in PRODUCTION_SECRETS:
        with pytest.raises(MissingVariable, match=name):
            arrangement(SECRETS | PRODUCTION_SECRETS | {name: ""}, env_files=[PRODUCTION_ENV])


def test_the_readme_names_every_secret_each_arrangement_asks_for():
    deploy = deploy_section()
    for shell, env_files in ((SECRETS, []), (SECRETS | PRODUCTION_SECRETS, [PRODUCTION_ENV])):
        for name in shell:
            try:
                arrangement({**shell, name: ""}, env_files=env_files)
            except MissingVariable:
                assert f"{name}=" in deploy, f"compose asks for {name}; README: Deploy does not"


@pytest.mark.parametrize("where", ARRANGEMENTS)
def test_the_escrow_key_reaches_exactly_the_signing_worker(where):
    services = ARRANGEMENTS[where]
    given = {name for name, s in services.items() if SECRETS["KIBO_ESCROW_PRIVATE_KEY"] in str(s)}
    assert given == {"worker-chain"}
    assert queues(services["worker-chain"]["command"]) == {
        settings.KIBO_CHAIN_QUEUE,
        settings.KIBO_RETURNS_QUEUE,
    }


@pytest.mark.parametrize("where", ARRANGEMENTS)
def test_the_push_signing_key_reaches_only_the_notifier(where):
    services = ARRANGEMENTS[where]
    given = {name for name, s in services.items() if SECRETS["KIBO_VAPID_PRIVATE_KEY"] in str(s)}
    assert given == {"notifier"}
    assert queues(services["notifier"]["command"]) == {settings.KIBO_NOTICES_QUEUE}


@pytest.mark.parametrize("where", ARRANGEMENTS)
def test_the_workers_share_out_every_queue_and_only_the_signer_consumes_the_chains(where):
    workers = celery(ARRANGEMENTS[where], "worker")
    consumed = [queues(command) for command in workers.values()]
    every = {queue.name for queue in settings.CELERY_TASK_QUEUES}
    assert set().union(*consumed) == every
    assert sum(len(q) for q in consumed) == len(every)  # each queue by one kind of worker
    chains = {settings.KIBO_CHAIN_QUEUE, settings.KIBO_RETURNS_QUEUE}
    assert {name for name, command in workers.items() if queues(command) & chains} == {
        "worker-chain"
    }


@pytest.mark.parametrize("where", ARRANGEMENTS)
def test_scalable_services_have_no_container_name_and_no_port_and_the_signer_cannot_scale(where):
    services = ARRANGEMENTS[where]
    for name in SCALABLE:
        assert "container_name" not in services[name], name
        assert "ports" not in services[name], name
    # compose refuses to run two containers of a service with a container_name
    assert services["worker-chain"]["container_name"]


def test_only_the_proxy_is_open_beyond_the_host():
    services = arrangement(
        SECRETS | PRODUCTION_SECRETS, env_files=[PRODUCTION_ENV], profiles=EVERY_PROFILE
    )
    published = {
        name
        for name, s in services.items()
        for port in s.get("ports", [])
        if not port.startswith("127.0.0.1:")
    }
    assert published == {"proxy"}


@pytest.mark.parametrize("where", ARRANGEMENTS)
def test_web_trusts_the_proxy_as_its_one_hop(where):
    services = ARRANGEMENTS[where]
    assert services["web"]["environment"]["KIBO_TRUSTED_PROXY_HOPS"] == "1"
    config = "./deploy/nginx/kibo.conf:/etc/nginx/conf.d/default.conf:ro"
    assert config in services["proxy"]["volumes"]


def test_the_proxy_appends_the_client_and_finds_every_copy_of_web():
    bind = COMPOSE["services"]["web"]["command"]
    port = bind[bind.index("--bind") + 1].rsplit(":", 1)[1]
    assert re.search(rf"^\s*server web:{port} resolve;", NGINX, re.MULTILINE)
    assert re.search(r"^resolver 127\.0\.0\.11 valid=\d+s", NGINX, re.MULTILINE)  # Docker's DNS
    assert re.search(r"proxy_pass http://kibo_web;", NGINX)
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in NGINX
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in NGINX
    assert "proxy_set_header Host $host;" in NGINX


def test_the_proxy_takes_the_largest_upload_kibo_accepts():
    size, unit = re.search(r"client_max_body_size (\d+)([km]?);", NGINX).groups()
    limit = int(size) * {"": 1, "k": 1024, "m": 1024 * 1024}[unit]
    largest = max(settings.KIBO_PROOF_MAX_BYTES, settings.KIBO_QR_IMAGE_MAX_BYTES)
    assert limit >= largest + 1024 * 1024  # the file and the form around it
    assert limit >= settings.DATA_UPLOAD_MAX_MEMORY_SIZE


@pytest.mark.parametrize("where", ARRANGEMENTS)
def test_migrate_changes_the_schema_on_postgres_itself(where):
    environment = ARRANGEMENTS[where]["migrate"]["environment"]
    assert urlsplit(environment["DATABASE_URL"]).hostname == "postgres"
    assert not flag(environment["KIBO_DB_PGBOUNCER"])


def test_on_one_host_kibo_reaches_postgres_and_redis_directly():
    for name, service in kibo_processes(ONE_HOST).items():
        environment = service["environment"]
        assert urlsplit(environment["DATABASE_URL"]).hostname == "postgres", name
        assert not flag(environment["KIBO_DB_PGBOUNCER"]), name
        assert urlsplit(environment["KIBO_BROKER_URL"]).scheme == "redis", name
        assert not environment.get("DATABASE_REPLICA_URL"), name


def test_in_production_kibo_reaches_postgres_through_pgbouncer_in_transaction_mode():
    processes = kibo_processes(PRODUCTION)
    assert {"web", "worker-chain", "worker", "notifier", "beat", "beat-standby"} <= set(processes)
    for name, service in processes.items():
        url = urlsplit(service["environment"]["DATABASE_URL"])
        assert (url.hostname, url.port) == ("pgbouncer", 5432), name
        assert flag(service["environment"]["KIBO_DB_PGBOUNCER"]), name
    pgbouncer = PRODUCTION["pgbouncer"]["environment"]
    assert pgbouncer["POOL_MODE"] == "transaction"
    assert (pgbouncer["DB_HOST"], pgbouncer["DB_NAME"]) == ("postgres", "kibo")
    assert pgbouncer["DB_PASSWORD"] == SECRETS["POSTGRES_PASSWORD"]


def test_in_production_tasks_travel_through_rabbitmq_and_redis_keeps_the_cache():
    rabbitmq = PRODUCTION["rabbitmq"]
    for name, service in kibo_processes(PRODUCTION).items():
        broker = urlsplit(service["environment"]["KIBO_BROKER_URL"])
        assert (broker.scheme, broker.hostname, broker.port) == ("amqp", "rabbitmq", 5672), name
        assert (broker.username, broker.password) == (
            rabbitmq["environment"]["RABBITMQ_DEFAULT_USER"],
            PRODUCTION_SECRETS["RABBITMQ_PASSWORD"],
        ), name
        assert urlsplit(service["environment"]["REDIS_URL"]).hostname == "redis", name
    password = PRODUCTION_SECRETS["RABBITMQ_PASSWORD"]
    assert rabbitmq["environment"]["RABBITMQ_DEFAULT_PASS"] == password
    assert rabbitmq["healthcheck"]["test"]
    assert rabbitmq["hostname"] == "rabbitmq"  # the node's name, and so its data, stay


def test_in_production_web_reads_from_the_replica_that_streams_from_postgres():
    replica_url = urlsplit(PRODUCTION["web"]["environment"]["DATABASE_REPLICA_URL"])
    assert (replica_url.hostname, replica_url.port) == ("postgres-replica", 5432)
    for name, service in kibo_processes(PRODUCTION).items():
        if name != "web":
            assert not service["environment"].get("DATABASE_REPLICA_URL"), name
    replica = PRODUCTION["postgres-replica"]
    source, target = replica["volumes"][0].split(":")[:2]
    assert replica["entrypoint"] == ["sh", target]
    text = (BASE_DIR / source).read_text()
    assert "pg_basebackup --host=postgres --username=replicator" in text
    assert "--write-recovery-conf" in text  # -R: standby.signal and the primary's address
    assert replica["image"] == PRODUCTION["postgres"]["image"]
    # the primary lets the replicator in, with the password the replica is given
    assert (
        "./deploy/postgres/replication.sh:/docker-entrypoint-initdb.d/replication.sh:ro"
        in PRODUCTION["postgres"]["volumes"]
    )
    password = PRODUCTION_SECRETS["POSTGRES_REPLICATION_PASSWORD"]
    assert PRODUCTION["postgres"]["environment"]["POSTGRES_REPLICATION_PASSWORD"] == password
    assert replica["environment"]["POSTGRES_REPLICATION_PASSWORD"] == password


def test_in_production_two_beats_run_and_take_their_leader_lock_on_postgres_itself():
    beats = celery(PRODUCTION, "beat")
    assert set(beats) == {"beat", "beat-standby"}
    assert set(celery(ONE_HOST, "beat")) == {"beat"}
    assert settings.CELERY_BEAT_SCHEDULER == "kibo.beat:LeaderScheduler"
    for name, command in beats.items():
        assert not {"-S", "--scheduler"} & set(command), name  # the leader scheduler, always
        lock = urlsplit(PRODUCTION[name]["environment"]["KIBO_BEAT_LOCK_DATABASE_URL"])
        assert (lock.hostname, lock.port) == ("postgres", 5432), name


def test_prometheus_scrapes_every_worker():
    config = yaml.safe_load((BASE_DIR / "deploy" / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "kibo-worker")
    names = {name for sd in job["dns_sd_configs"] for name in sd["names"]}
    assert names == set(celery(PRODUCTION, "worker"))
    for name in names:
        port = PRODUCTION[name]["environment"]["KIBO_WORKER_METRICS_PORT"]
        assert all(sd["port"] == int(port) for sd in job["dns_sd_configs"])


def test_the_readme_says_how_many_copies_of_each_production_service_may_run():
    deploy = deploy_section()
    for name in PRODUCTION:
        assert f"`{name}`" in deploy, f"README: Deploy does not name {name}"
