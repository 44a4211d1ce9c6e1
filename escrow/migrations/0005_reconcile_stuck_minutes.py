from django.db import migrations

KEY = "RECONCILE_STUCK_MINUTES"


def seed(apps, schema_editor):
    apps.get_model("kibo", "SystemConfig").objects.get_or_create(
        key=KEY,
        defaults={
            "value": "30",
            "description": "escrow_reconcile reports a completed order whose payout, or an "
            "expired order whose refund, is not confirmed after this many minutes.",
        },
    )


def unseed(apps, schema_editor):
    apps.get_model("kibo", "SystemConfig").objects.filter(key=KEY).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("escrow", "0004_transfer_waiting_for_funds"),
        ("kibo", "0003_treasury_addresses"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
