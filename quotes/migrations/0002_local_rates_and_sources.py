import django.db.models
from django.db import migrations, models

CONFIG = [
    (
        "QUOTE_SOURCES",
        "binance_p2p,coingecko,local",
        "Rate sources in the order they are tried: binance_p2p, coingecko, local.",
    ),
    (
        "QUOTE_MAX_JUMP_PERCENT",
        "10",
        "A new rate further than this from the last one is refused and logged.",
    ),
]


def seed(apps, schema_editor):
    SystemConfig = apps.get_model("kibo", "SystemConfig")
    for key, value, description in CONFIG:
        SystemConfig.objects.get_or_create(
            key=key, defaults={"value": value, "description": description}
        )


def unseed(apps, schema_editor):
    apps.get_model("kibo", "SystemConfig").objects.filter(
        key__in=[k for k, _, _ in CONFIG]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("quotes", "0001_initial"), ("kibo", "0003_treasury_addresses")]

    operations = [
        migrations.CreateModel(
            name="LocalRate",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "token",
                    models.CharField(
                        choices=[("USDT", "Usdt"), ("USDC", "Usdc"), ("ETH", "Eth")], max_length=10
                    ),
                ),
                (
                    "fiat",
                    models.CharField(
                        choices=[
                            ("BOB", "Boliviano"),
                            ("MXN", "Mexican peso"),
                            ("ARS", "Argentine peso"),
                        ],
                        max_length=3,
                    ),
                ),
                ("rate", models.DecimalField(decimal_places=8, max_digits=18)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={
                "db_table": "local_rates",
                "constraints": [
                    models.UniqueConstraint(fields=("token", "fiat"), name="local_rate_per_pair"),
                    models.CheckConstraint(
                        condition=django.db.models.Q(("rate__gt", 0)), name="local_rate_positive"
                    ),
                ],
            },
        ),
        migrations.RunPython(seed, unseed),
    ]
