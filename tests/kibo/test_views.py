import pytest

from tests.factories import make_quote
from tests.helpers.networks import change_local_network


@pytest.mark.django_db
def test_healthz_reports_database_broker_and_quote_ages_to_staff(admin_client):
    make_quote(token="USDT", fiat="BOB", rate="9.80", age_seconds=42)
    body = admin_client.get("/healthz/").json()
    assert body["status"] == "ok" and body["database"] and body["broker"]
    assert body["chain"]["local"] > 0
    pair = body["quotes"]["USDT/BOB"]
    assert pair["rate"] == "9.80000000" and pair["source"] == "test"
    assert 42 <= pair["age_seconds"] < 60


@pytest.mark.django_db
def test_the_landing_page_explains_kibo(client):
    response = client.get("/")
    assert response.status_code == 200
    assert "Pay any QR with crypto" in response.content.decode()


@pytest.mark.django_db
def test_healthz_names_a_chain_node_that_does_not_answer(admin_client, settings):
    change_local_network(settings, rpc_urls=("http://127.0.0.1:9",))
    body = admin_client.get("/healthz/").json()
    assert body["status"] == "ok" and body["chain"] == {"local": None}


@pytest.mark.django_db
def test_anyone_else_gets_readiness_without_detail_and_never_reaches_the_chain(
    client, admin_client, monkeypatch
):
    import kibo.views

    asked, real = [], kibo.views.head_block

    def head_block(name):  # the real call, counted
        asked.append(name)
        return real(name)

    monkeypatch.setattr(kibo.views, "head_block", head_block)
    for _ in range(5):
        response = client.get("/healthz/")
        assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert asked == []  # an anonymous request never calls a node
    for _ in range(5):
        admin_client.get("/healthz/")
    assert asked == ["local"]  # staff's detail: the nodes asked once for five requests


def test_liveness_answers_without_the_database_or_the_network(client):
    response = client.get("/livez/")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/", "/auth/"])
def test_pages_forbid_inline_scripts_and_framing(client, path):
    response = client.get(path)
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy and response["X-Frame-Options"] == "DENY"
    page = response.content.decode()
    assert "<script>" not in page and "onclick=" not in page
