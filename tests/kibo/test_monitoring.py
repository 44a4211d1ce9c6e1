"""The monitoring files in deploy/: alerts valid, unit-tested by promtool case by case,
about figures Kibo really exposes, each with its runbook entry in the README; Prometheus'
configuration valid; the Grafana dashboard asking for real figures, provisioned by compose."""

import json
import re
import shutil
import subprocess

import pytest
import yaml
from prometheus_client import REGISTRY

from kibo.env import BASE_DIR
from kibo.metrics import BusinessCollector

RULES = BASE_DIR / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = BASE_DIR / "deploy" / "prometheus" / "alerts_test.yml"
DASHBOARD = BASE_DIR / "deploy" / "grafana" / "kibo.json"
COMPOSE = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())


def alerts() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def promtool(*args: str) -> subprocess.CompletedProcess:
    executable = shutil.which("promtool")
    assert executable, "promtool is missing: `make test` installs Debian's prometheus package"
    return subprocess.run(
        [executable, *args], cwd=RULES.parent, capture_output=True, text=True, timeout=60
    )


def test_the_rules_are_valid_and_pass_their_unit_tests():
    checked = promtool("check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", RULE_TESTS.name)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_is_tested_firing_and_quiet():
    cases = [
        check
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for check in test["alert_rule_test"]
    ]
    for rule in alerts():
        name = rule["alert"]
        assert any(c["alertname"] == name and c["exp_alerts"] for c in cases), f"{name} fires"
        assert any(c["alertname"] == name and not c["exp_alerts"] for c in cases), f"{name} quiet"


def test_every_alert_has_a_severity_and_a_runbook_entry_in_the_readme():
    readme = (BASE_DIR / "README.md").read_text()
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in readme.splitlines()
        if line.startswith("#")
    }
    for rule in alerts():
        assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]
        anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
        assert anchor == rule["alert"].lower()
        assert anchor in headings, f"README has no runbook heading for {rule['alert']}"


def exposed_names() -> set[str]:
    """Every series name Kibo can expose: the counters and histograms each process keeps,
    and the business collector's gauges."""
    suffixes = {"counter": ("_total",), "histogram": ("_count", "_sum", "_bucket"), "gauge": ("",)}
    names = set()
    for family in [*REGISTRY.collect(), *BusinessCollector().collect()]:
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names


@pytest.mark.django_db
def test_alerts_ask_only_for_figures_kibo_exposes():
    exposed = exposed_names()
    for rule in alerts():
        for name in re.findall(r"\bkibo_[a-z_]+\b", rule["expr"]):
            assert name in exposed, f"{rule['alert']} reads {name}, which Kibo does not expose"


@pytest.mark.django_db
def test_the_dashboard_asks_only_for_figures_kibo_exposes():
    exposed = exposed_names()
    panels = [p for p in json.loads(DASHBOARD.read_text())["panels"] if p["type"] != "row"]
    titles = " ".join(p["title"] for p in panels).lower()
    for part in ("orders", "escrow", "watcher", "task"):  # orders, money, chain, workers
        assert part in titles
    for panel in panels:
        for target in panel["targets"]:
            for name in re.findall(r"\bkibo_[a-z_]+\b", target["expr"]):
                assert name in exposed, f"{panel['title']!r} reads {name}, not exposed"


def test_prometheus_configuration_is_valid_and_scrapes_web_business_and_workers(tmp_path):
    config = yaml.safe_load((RULES.parent / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["kibo-web"]["metrics_path"] == "/metrics"
    assert jobs["kibo-business"]["metrics_path"] == "/metrics/business"
    worker_port = COMPOSE["services"]["worker"]["environment"]["KIBO_WORKER_METRICS_PORT"]
    assert jobs["kibo-worker"]["dns_sd_configs"][0]["port"] == int(worker_port)
    # promtool checks that the token file exists: point it at one here
    token = tmp_path / "token"
    token.write_text("t")
    for job in config["scrape_configs"]:
        if "authorization" in job:
            job["authorization"]["credentials_file"] = str(token)
    config["rule_files"] = [str(RULES)]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    checked = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_monitoring_profile_provisions_prometheus_and_grafana():
    prometheus, grafana = COMPOSE["services"]["prometheus"], COMPOSE["services"]["grafana"]
    assert prometheus["profiles"] == grafana["profiles"] == ["monitoring"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert prometheus["secrets"] == ["kibo_metrics_token"]
    mounts = dict(volume.split(":")[:2] for volume in grafana["volumes"])
    provider = yaml.safe_load(
        (BASE_DIR / "deploy/grafana/provisioning/dashboards/kibo.yml").read_text()
    )["providers"][0]
    assert mounts["./deploy/grafana"] == provider["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    for service in (prometheus, grafana):  # never open to the world
        assert all(port.startswith("127.0.0.1:") for port in service["ports"])
