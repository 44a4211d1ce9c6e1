"""The audit log's monthly partitions (migration audit 0013): made ahead of need by beat,
and the months past AUDIT_RETENTION_MONTHS archived and dropped (audit.retention)."""

from datetime import date

from django.db import connection

MONTHS_AHEAD = 3  # beat makes this many months' partitions before they are needed


def month_start(day: date, *, plus: int = 0) -> date:
    """The first day of `day`'s month, `plus` months later (earlier when negative)."""
    index = day.year * 12 + day.month - 1 + plus
    return date(index // 12, index % 12 + 1, 1)


def logs_partitions_ensure(*, today: date, months_ahead: int = MONTHS_AHEAD) -> list[str]:
    """Make sure this month's partition and the next `months_ahead` ones exist (beat, daily;
    making one that exists does nothing). Returns their names."""
    with connection.cursor() as cursor:
        names = []
        for ahead in range(months_ahead + 1):
            cursor.execute("SELECT logs_partition_create(%s)", [month_start(today, plus=ahead)])
            names.append(cursor.fetchone()[0])
    return names


def logs_partitions() -> list[tuple[str, str]]:
    """The attached partitions, oldest first: (name, bounds as PostgreSQL writes them)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT child.relname, pg_get_expr(child.relpartbound, child.oid)
              FROM pg_inherits
              JOIN pg_class child ON child.oid = pg_inherits.inhrelid
             WHERE pg_inherits.inhparent = 'logs'::regclass
             ORDER BY child.relname
            """
        )
        return cursor.fetchall()


def logs_months_ahead(*, today: date) -> int:
    """How many months after this one already have their partition."""
    names = {name for name, _ in logs_partitions()}
    ahead = 0
    while True:
        month = month_start(today, plus=ahead + 1)
        if f"logs_y{month:%Y}m{month:%m}" not in names:
            return ahead
        ahead += 1


def logs_rows_outside_months() -> int:
    """Rows in the default partition: written where no month's partition was made."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM logs_default")
        return cursor.fetchone()[0]
