from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache

from kibo import config
from kibo.models import SystemConfig
from kibo.services import config_set

pytestmark = pytest.mark.django_db

SEEDED = {
    "PENDING_PAYMENT_TIMEOUT_MINUTES": "3",
    "AVAILABLE_TIMEOUT_MINUTES": "5",
    "TAKEN_TIMEOUT_MINUTES": "5",
    "ALLY_PENALTY_MINUTES": "30",
    "QUOTE_UPDATE_INTERVAL_SECONDS": "30",
    "MIN_ORDER_AMOUNT_BOB": "10",
    "MAX_ORDER_AMOUNT_BOB": "10000",
}


def test_the_seed_keys_and_values_are_present_and_typed():
    stored = dict(SystemConfig.objects.values_list("key", "value"))
    for key, value in SEEDED.items():
        assert stored[key] == value
    assert config.ALLY_PENALTY_MINUTES.get() == 30
    assert config.TAKEN_TIMEOUT.get() == timedelta(minutes=5)
    assert config.PLATFORM_FEE_PERCENT.get() == Decimal("1.0")
    assert config.QUOTE_SOURCES.get() == ("binance_p2p", "coingecko", "local")


def test_every_declared_option_has_a_seeded_row_and_every_row_an_option():
    # given a migrated database: a new option comes with the migration that seeds it
    stored = dict(SystemConfig.objects.values_list("key", "value"))
    assert set(stored) == set(config.OPTIONS)
    for key, text in stored.items():
        config.OPTIONS[key].read(text)  # each stored value is one its option takes


def test_an_unknown_key_is_a_programming_error_not_a_message():
    from kibo.errors import DomainError

    with pytest.raises(config.UnknownConfigKey, match="NO_SUCH_KEY") as raised:
        config.option_named("NO_SUCH_KEY")
    assert not isinstance(raised.value, DomainError)  # a 500 and a log line, not a message
    with pytest.raises(config.UnknownConfigKey):
        config_set(key="NO_SUCH_KEY", value="1")
    assert not SystemConfig.objects.filter(key="NO_SUCH_KEY").exists()


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("ALLY_PENALTY_MINUTES", "ten", "takes a whole number"),
        ("ALLY_PENALTY_MINUTES", "0", "is at least 1 \\(minutes\\)"),
        ("TAKEN_TIMEOUT_MINUTES", "1e9", "is at most 60 \\(minutes\\)"),
        ("PLATFORM_FEE_PERCENT", "NaN", "takes a number"),
        ("PLATFORM_FEE_PERCENT", "150", "is at most 20 %"),
        ("ESCROW_TREASURY_ADDRESSES", "0x1234", "takes an Ethereum address"),
        ("QUOTE_SOURCES", "local,oracle", "a comma-separated list of binance_p2p"),
    ],
)
def test_a_value_of_the_wrong_type_or_out_of_bounds_is_refused_and_changes_nothing(
    key, value, reason
):
    before = SystemConfig.objects.get(key=key).value
    with pytest.raises(config.InvalidConfigValue, match=reason):
        config_set(key=key, value=value)
    assert SystemConfig.objects.get(key=key).value == before


def test_a_key_without_a_row_has_its_default():
    SystemConfig.objects.filter(key="DISPUTE_SLA_HOURS").delete()
    assert config.DISPUTE_SLA_HOURS.get() == 24


def test_a_stored_value_written_behind_the_services_back_fails_loudly():
    SystemConfig.objects.filter(key="ALLY_PENALTY_MINUTES").update(value="many")
    with pytest.raises(config.ConfigCorrupt, match="ALLY_PENALTY_MINUTES='many'"):
        config.ALLY_PENALTY_MINUTES.get()


def test_the_escrow_address_is_no_option_and_no_row_staff_could_edit(admin_client):
    # the payers' destination is deployment configuration (KIBO_ESCROW_ADDRESS)
    assert "ESCROW_WALLET_ADDRESS" not in config.OPTIONS
    assert not SystemConfig.objects.filter(key="ESCROW_WALLET_ADDRESS").exists()
    with pytest.raises(config.UnknownConfigKey):
        config_set(key="ESCROW_WALLET_ADDRESS", value="0x" + "1" * 40)
    response = admin_client.post(
        "/admin/kibo/systemconfig/add/",
        {"key": "ESCROW_WALLET_ADDRESS", "value": "0x" + "1" * 40},
    )
    assert response.status_code == 200  # the form refuses the key
    assert not SystemConfig.objects.filter(key="ESCROW_WALLET_ADDRESS").exists()
    # and staff read it, from the environment, on the admin's first page
    page = admin_client.get("/admin/").content.decode()
    assert "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266" in page


def test_every_change_is_audited_with_the_old_and_new_value_and_the_staff_member(
    admin_client, admin_user
):
    from audit.models import Action, Log

    # through the service, and through the admin's list, where values are edited in place
    config_set(key="DISPUTE_SLA_HOURS", value="12", staff=admin_user)
    admin_client.post(
        "/admin/kibo/systemconfig/",
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-key": "ALLY_PENALTY_MINUTES",
            "form-0-value": "45",
            "_save": "Save",
        },
    )
    config_set(key="DISPUTE_SLA_HOURS", value="12", staff=admin_user)  # no change: no entry
    changes = [
        (entry.metadata["key"], entry.metadata["old"], entry.metadata["new"], entry.actor_wallet)
        for entry in Log.objects.filter(action=Action.CONFIG_CHANGED).order_by("created_at")
    ]
    assert changes == [
        ("DISPUTE_SLA_HOURS", "24", "12", admin_user.wallet_address),
        ("ALLY_PENALTY_MINUTES", "30", "45", admin_user.wallet_address),
    ]


def test_migrate_refuses_to_run_on_a_stored_value_its_option_does_not_take():
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    # given a value stored before the bounds were declared
    SystemConfig.objects.filter(key="AVAILABLE_TIMEOUT_MINUTES").update(value="90")
    # when the checks migrate runs first are run, then it is named
    with pytest.raises(SystemCheckError) as refused:
        call_command("check", databases=["default"])
    said = str(refused.value)
    assert "kibo.E001" in said and "AVAILABLE_TIMEOUT_MINUTES='90'" in said
    assert "is at most 60" in said


def test_config_is_read_from_the_cache_after_the_first_call(django_assert_num_queries):
    config.TAKEN_TIMEOUT.get()
    with django_assert_num_queries(0):
        assert config.TAKEN_TIMEOUT.get() == timedelta(minutes=5)


def test_an_edit_is_seen_at_once_without_a_restart(django_capture_on_commit_callbacks):
    assert config.TAKEN_TIMEOUT.get() == timedelta(minutes=5)
    with django_capture_on_commit_callbacks(execute=True):
        config_set(key="TAKEN_TIMEOUT_MINUTES", value="7")
    assert config.TAKEN_TIMEOUT.get() == timedelta(minutes=7)
    assert SystemConfig.objects.get(key="TAKEN_TIMEOUT_MINUTES").value == "7"


def test_a_value_another_process_read_before_an_edit_committed_is_never_served_after_it(
    django_capture_on_commit_callbacks,
):
    # given another process read the config (from the database) while an edit was under way
    config.TAKEN_TIMEOUT.get()
    version_it_saw = config.config_version()
    what_it_read = dict(SystemConfig.objects.values_list("key", "value"))

    # when the edit commits, and only then that process caches what it read
    with django_capture_on_commit_callbacks(execute=True):
        config_set(key="TAKEN_TIMEOUT_MINUTES", value="9")
    cache.set(f"system-config:{version_it_saw}", what_it_read, 60)

    # then every reader still gets the edited value
    assert config.TAKEN_TIMEOUT.get() == timedelta(minutes=9)


def test_an_edit_through_the_admin_is_seen_at_once(
    admin_client, django_capture_on_commit_callbacks
):
    assert config.ALLY_PENALTY_MINUTES.get() == 30
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/kibo/systemconfig/ALLY_PENALTY_MINUTES/change/", {"value": "45"}
        )
    assert response.status_code == 302
    assert config.ALLY_PENALTY_MINUTES.get() == 45


def test_the_admin_refuses_a_value_the_option_does_not_take(admin_client):
    response = admin_client.post(
        "/admin/kibo/systemconfig/ALLY_PENALTY_MINUTES/change/", {"value": "forever"}
    )
    assert response.status_code == 200
    assert "ALLY_PENALTY_MINUTES takes a whole number." in response.content.decode()
    assert config.ALLY_PENALTY_MINUTES.get() == 30
    assert (
        "Kept from each deposit" in admin_client.get("/admin/kibo/systemconfig/").content.decode()
    )


def test_the_quote_sources_the_option_takes_are_the_providers_there_are():
    from quotes.providers import BinanceP2P, CoinGecko, Local

    assert config.QUOTE_SOURCES.read("binance_p2p,coingecko,local") == (
        BinanceP2P.name,
        CoinGecko.name,
        Local.name,
    )
