from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # The index is built without locking writes: transfers is a big table.
    atomic = False

    dependencies = [
        ("escrow", "0013_deposits_kept"),
    ]

    operations = [
        migrations.AddField(
            model_name="chaincursor",
            name="checked_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="chaincursor",
            name="head_number",
            field=models.PositiveBigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="chaincursor",
            name="head_time",
            field=models.DateTimeField(
                blank=True, help_text="When the node's newest block was made.", null=True
            ),
        ),
        AddIndexConcurrently(
            model_name="transfer",
            index=models.Index(
                condition=models.Q(("status", "FAILED")),
                fields=["created_at"],
                name="idx_transfers_failed",
            ),
        ),
    ]
