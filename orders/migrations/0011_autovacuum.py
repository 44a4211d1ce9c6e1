"""orders is updated at every step of an order: vacuum and analyze it after 2 % and 1 % of
its rows changed (not PostgreSQL's 20 % and 10 %, which at millions of rows means a long
wait and a bloated table), and leave room on each page for HOT updates."""

from django.db import migrations

SETTINGS = (
    "autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.01, fillfactor = 90"
)


class Migration(migrations.Migration):
    dependencies = [("orders", "0010_private_files_permission")]

    operations = [
        migrations.RunSQL(
            f"ALTER TABLE orders SET ({SETTINGS});",
            "ALTER TABLE orders RESET (autovacuum_vacuum_scale_factor, "
            "autovacuum_analyze_scale_factor, fillfactor);",
        ),
    ]
