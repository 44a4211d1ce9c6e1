"""The escrow address is deployment configuration (KIBO_ESCROW_ADDRESS, from the
environment), not a value staff edit: its SYSTEM_CONFIG row goes. Unapplied, the row comes
back with the address this deployment is configured with."""

from django.conf import settings
from django.db import migrations

KEY = "ESCROW_WALLET_ADDRESS"


def forget(apps, schema_editor):
    apps.get_model("kibo", "SystemConfig").objects.filter(key=KEY).delete()


def restore(apps, schema_editor):
    apps.get_model("kibo", "SystemConfig").objects.get_or_create(
        key=KEY,
        defaults={
            "value": settings.KIBO_ESCROW_ADDRESS,
            "description": "The escrow hot wallet; must match KIBO_ESCROW_PRIVATE_KEY.",
        },
    )


class Migration(migrations.Migration):
    dependencies = [("kibo", "0006_release_hold_ten_minutes")]

    operations = [migrations.RunPython(forget, restore)]
