from django.db import migrations

SEEDED = {
    "RELEASE_HOLD_MINUTES_NEW_ALLY": (
        "120",
        "Minutes the payout is held instead for an ally's first NEW_ALLY_ORDERS completed "
        "orders: a fresh account's receipts have no record behind them yet.",
    ),
    "NEW_ALLY_ORDERS": (
        "5",
        "Completed orders an ally's payouts are held RELEASE_HOLD_MINUTES_NEW_ALLY for.",
    ),
    **{
        f"RETURN_MIN_{token}": (
            minimum,
            f"The least {token} returned automatically to the sender of a deposit that pays "
            "no order (or of an over-payment's excess); less is kept for staff to return.",
        )
        for token, minimum in (("USDT", "0.50"), ("USDC", "0.50"), ("ETH", "0.0002"))
    },
}


def seed(apps, schema_editor):
    config = apps.get_model("kibo", "SystemConfig")
    for key, (value, description) in SEEDED.items():
        config.objects.get_or_create(key=key, defaults={"value": value, "description": description})


def unseed(apps, schema_editor):
    apps.get_model("kibo", "SystemConfig").objects.filter(key__in=SEEDED).delete()


class Migration(migrations.Migration):
    dependencies = [("kibo", "0007_escrow_address_from_the_environment")]

    operations = [migrations.RunPython(seed, unseed)]
