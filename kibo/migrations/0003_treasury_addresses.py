from django.db import migrations


def seed(apps, schema_editor):
    apps.get_model("kibo", "SystemConfig").objects.get_or_create(
        key="ESCROW_TREASURY_ADDRESSES",
        defaults={
            "value": "",
            "description": "Comma-separated wallets whose transfers into escrow are operator "
            "funding (e.g. gas), kept instead of returned.",
        },
    )


def unseed(apps, schema_editor):
    apps.get_model("kibo", "SystemConfig").objects.filter(key="ESCROW_TREASURY_ADDRESSES").delete()


class Migration(migrations.Migration):
    dependencies = [("kibo", "0002_seed_system_config")]

    operations = [migrations.RunPython(seed, unseed)]
