import pytest
from django.core.cache import cache

from kibo.errors import ConfigMissing
from kibo.models import SystemConfig
from kibo.selectors import _config_version, get_config, get_config_decimal, get_config_int
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
ADDED = [
    "MIN_ORDER_AMOUNT_MXN",
    "MAX_ORDER_AMOUNT_MXN",
    "MIN_ORDER_AMOUNT_ARS",
    "MAX_ORDER_AMOUNT_ARS",
    "PLATFORM_FEE_PERCENT",
    "QUOTE_SPREAD_PERCENT",
    "QUOTE_MAX_AGE_SECONDS",
    "ESCROW_WALLET_ADDRESS",
]


def test_the_seed_keys_and_values_are_present():
    for key, value in SEEDED.items():
        assert get_config(key) == value
    for key in ADDED:
        assert get_config(key)
    assert get_config_int("ALLY_PENALTY_MINUTES") == 30
    assert str(get_config_decimal("PLATFORM_FEE_PERCENT")) == "1.0"


def test_a_missing_key_raises_instead_of_guessing():
    with pytest.raises(ConfigMissing, match="NO_SUCH_KEY"):
        get_config("NO_SUCH_KEY")


def test_config_is_read_from_the_cache_after_the_first_call(django_assert_num_queries):
    get_config("TAKEN_TIMEOUT_MINUTES")
    with django_assert_num_queries(0):
        assert get_config("TAKEN_TIMEOUT_MINUTES") == "5"


def test_an_edit_is_seen_at_once_without_a_restart(django_capture_on_commit_callbacks):
    assert get_config("TAKEN_TIMEOUT_MINUTES") == "5"
    with django_capture_on_commit_callbacks(execute=True):
        config_set(key="TAKEN_TIMEOUT_MINUTES", value="7")
    assert get_config("TAKEN_TIMEOUT_MINUTES") == "7"
    assert SystemConfig.objects.get(key="TAKEN_TIMEOUT_MINUTES").value == "7"


def test_a_value_another_process_read_before_an_edit_committed_is_never_served_after_it(
    django_capture_on_commit_callbacks,
):
    # given another process read the config (from the database) while an edit was under way
    get_config("TAKEN_TIMEOUT_MINUTES")
    version_it_saw = _config_version()
    what_it_read = dict(SystemConfig.objects.values_list("key", "value"))

    # when the edit commits, and only then that process caches what it read
    with django_capture_on_commit_callbacks(execute=True):
        config_set(key="TAKEN_TIMEOUT_MINUTES", value="9")
    cache.set(f"system-config:{version_it_saw}", what_it_read, 60)

    # then every reader still gets the edited value
    assert get_config("TAKEN_TIMEOUT_MINUTES") == "9"


def test_an_edit_through_the_admin_is_seen_at_once(
    admin_client, django_capture_on_commit_callbacks
):
    assert get_config("ALLY_PENALTY_MINUTES") == "30"
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/kibo/systemconfig/ALLY_PENALTY_MINUTES/change/",
            {"key": "ALLY_PENALTY_MINUTES", "value": "45", "description": "longer"},
        )
    assert response.status_code == 302
    assert get_config("ALLY_PENALTY_MINUTES") == "45"
