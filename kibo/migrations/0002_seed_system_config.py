from django.db import migrations

SEED = [
    ("PENDING_PAYMENT_TIMEOUT_MINUTES", "3", "Minutes a new order waits for the user's deposit."),
    ("AVAILABLE_TIMEOUT_MINUTES", "5", "Minutes a paid order waits on the board for an ally."),
    ("TAKEN_TIMEOUT_MINUTES", "5", "Minutes the ally who took an order has to upload the receipt."),
    (
        "ALLY_PENALTY_MINUTES",
        "30",
        "Minutes an ally who let a taken order expire cannot take orders.",
    ),
    ("QUOTE_UPDATE_INTERVAL_SECONDS", "30", "How often market rates are refreshed."),
    ("QUOTE_MAX_AGE_SECONDS", "120", "An order cannot be priced with a quote older than this."),
    ("QUOTE_SPREAD_PERCENT", "0.5", "Added to the market rate when pricing an order."),
    ("PLATFORM_FEE_PERCENT", "1.0", "Kept from each deposit; the ally receives the rest."),
    ("MIN_ORDER_AMOUNT_BOB", "10", "Smallest order in bolivianos."),
    ("MAX_ORDER_AMOUNT_BOB", "10000", "Largest order in bolivianos."),
    ("MIN_ORDER_AMOUNT_MXN", "25", "Smallest order in Mexican pesos."),
    ("MAX_ORDER_AMOUNT_MXN", "25000", "Largest order in Mexican pesos."),
    ("MIN_ORDER_AMOUNT_ARS", "1500", "Smallest order in Argentine pesos."),
    ("MAX_ORDER_AMOUNT_ARS", "1500000", "Largest order in Argentine pesos."),
    (
        "ESCROW_WALLET_ADDRESS",
        # The local development chain's first account; production sets its own.
        "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        "The escrow hot wallet; must match KIBO_ESCROW_PRIVATE_KEY.",
    ),
]


def seed(apps, schema_editor):
    SystemConfig = apps.get_model("kibo", "SystemConfig")
    for key, value, description in SEED:
        SystemConfig.objects.get_or_create(
            key=key, defaults={"value": value, "description": description}
        )


def unseed(apps, schema_editor):
    apps.get_model("kibo", "SystemConfig").objects.filter(key__in=[k for k, _, _ in SEED]).delete()


class Migration(migrations.Migration):
    dependencies = [("kibo", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
