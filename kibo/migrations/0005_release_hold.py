from django.db import migrations

DESCRIPTION = (
    "Minutes a completed order's payout is held while the payer may still say the shop was "
    "not paid (0: it goes out at once)."
)


def seed(apps, schema_editor):
    apps.get_model("kibo", "SystemConfig").objects.get_or_create(
        key="RELEASE_HOLD_MINUTES", defaults={"value": "0", "description": DESCRIPTION}
    )


def unseed(apps, schema_editor):
    apps.get_model("kibo", "SystemConfig").objects.filter(key="RELEASE_HOLD_MINUTES").delete()


class Migration(migrations.Migration):
    dependencies = [("kibo", "0004_blacklist")]

    operations = [migrations.RunPython(seed, unseed)]
