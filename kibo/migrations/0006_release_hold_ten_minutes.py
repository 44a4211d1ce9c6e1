from django.db import migrations


def seed(apps, schema_editor):
    """Hold payouts for 10 minutes, unless an operator already chose another hold."""
    apps.get_model("kibo", "SystemConfig").objects.filter(
        key="RELEASE_HOLD_MINUTES", value="0"
    ).update(value="10")


def unseed(apps, schema_editor):
    apps.get_model("kibo", "SystemConfig").objects.filter(
        key="RELEASE_HOLD_MINUTES", value="10"
    ).update(value="0")


class Migration(migrations.Migration):
    dependencies = [("kibo", "0005_release_hold")]

    operations = [migrations.RunPython(seed, unseed)]
