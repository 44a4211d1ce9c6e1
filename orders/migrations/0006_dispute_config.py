from django.db import migrations

CONFIG = {
    "FAKE_PROOF_PENALTY_MINUTES": (
        "1440",
        "Minutes an ally cannot take orders after staff find a receipt false.",
    ),
    "FAKE_PROOF_REPUTATION_LOSS": (
        "1.00",
        "Reputation (0 to 5) an ally loses when staff find a receipt false.",
    ),
    "DISPUTE_SLA_HOURS": (
        "24",
        "Hours within which staff decide a dispute; an older open one shows as overdue.",
    ),
}


def seed(apps, schema_editor):
    SystemConfig = apps.get_model("kibo", "SystemConfig")
    for key, (value, description) in CONFIG.items():
        SystemConfig.objects.get_or_create(
            key=key, defaults={"value": value, "description": description}
        )


def unseed(apps, schema_editor):
    apps.get_model("kibo", "SystemConfig").objects.filter(key__in=CONFIG).delete()


class Migration(migrations.Migration):
    dependencies = [("orders", "0005_disputes"), ("kibo", "0006_release_hold_ten_minutes")]

    operations = [migrations.RunPython(seed, unseed)]
