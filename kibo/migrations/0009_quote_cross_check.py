from django.db import migrations

KEY = "QUOTE_CROSS_CHECK_PERCENT"
DESCRIPTION = (
    "A rate further than this from what the next source in QUOTE_SOURCES says is refused "
    "and logged (0: no second opinion is asked)."
)


def seed(apps, schema_editor):
    apps.get_model("kibo", "SystemConfig").objects.get_or_create(
        key=KEY, defaults={"value": "10", "description": DESCRIPTION}
    )


def unseed(apps, schema_editor):
    apps.get_model("kibo", "SystemConfig").objects.filter(key=KEY).delete()


class Migration(migrations.Migration):
    dependencies = [("kibo", "0008_new_ally_hold_and_return_minimums")]

    operations = [migrations.RunPython(seed, unseed)]
