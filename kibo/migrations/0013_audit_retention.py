from django.db import migrations

KEY = "AUDIT_RETENTION_MONTHS"
DESCRIPTION = (
    "Months of audit log kept in the database; older months are archived to S3, verified "
    "there, and only then dropped (needs KIBO_AUDIT_ARCHIVE_BUCKET)."
)


def seed(apps, schema_editor):
    apps.get_model("kibo", "SystemConfig").objects.get_or_create(
        key=KEY, defaults={"value": "24", "description": DESCRIPTION}
    )


def unseed(apps, schema_editor):
    apps.get_model("kibo", "SystemConfig").objects.filter(key=KEY).delete()


class Migration(migrations.Migration):
    dependencies = [("kibo", "0012_operator_views")]

    operations = [migrations.RunPython(seed, unseed)]
