"""transfers is updated as each payout, refund or return is signed, sent and settled: vacuum
and analyze it after 2 % and 1 % of its rows changed, with room for HOT updates."""

from django.db import migrations

SETTINGS = (
    "autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.01, fillfactor = 90"
)


class Migration(migrations.Migration):
    dependencies = [("escrow", "0015_sender_state")]

    operations = [
        migrations.RunSQL(
            f"ALTER TABLE transfers SET ({SETTINGS});",
            "ALTER TABLE transfers RESET (autovacuum_vacuum_scale_factor, "
            "autovacuum_analyze_scale_factor, fillfactor);",
        ),
    ]
