"""Order lifecycle throughput and the cost of the hot reads, on real PostgreSQL.

Run with `make bench`. Starts its own embedded PostgreSQL and Valkey (or uses DATABASE_URL /
REDIS_URL), builds a fresh database, and prints one line per figure.
"""

import os
import shutil
import sys
import time
from datetime import timedelta
from decimal import Decimal

ORDERS = int(os.environ.get("BENCH_ORDERS", "500"))


def timed(label: str, count: int, work) -> None:
    start = time.perf_counter()
    result = work()
    elapsed = time.perf_counter() - start
    print(
        f"{label:<44} {count:>6} in {elapsed:7.3f} s  {count / elapsed:9.1f}/s"
        f"  {elapsed / count * 1000:7.2f} ms each",
        flush=True,
    )
    return result


def main() -> None:
    from devtools.embedded import STATE_DIR, embedded_services

    shutil.rmtree(STATE_DIR / "bench-postgres", ignore_errors=True)
    os.environ["DJANGO_SETTINGS_MODULE"] = "kibo.settings.local"
    os.environ["DJANGO_DEBUG"] = "false"  # no query log: measure what production does
    with embedded_services("bench"):
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection
        from django.test.utils import CaptureQueriesContext
        from django.utils import timezone

        call_command("migrate", verbosity=0)

        from orders.board import available_orders
        from orders.models import Order
        from orders.selectors import admin_metrics, user_order_summary
        from orders.services import (
            order_complete,
            order_create,
            order_mark_paid,
            order_take,
            orders_expire_due,
        )
        from tests.factories import QR, make_ally, make_quote, make_user, png_upload, tx_hash

        make_quote(token="USDT", fiat="BOB", rate="9.80")
        users = [make_user() for _ in range(ORDERS)]
        allies = [make_ally(country="BO") for _ in range(ORDERS)]

        orders = timed(
            "order_create",
            ORDERS,
            lambda: [
                order_create(
                    user=u,
                    qr_data=QR,
                    amount_fiat=Decimal("100.00"),
                    fiat_currency="BOB",
                    crypto_token="USDT",
                    network="local",
                )
                for u in users
            ],
        )
        timed(
            "order_mark_paid",
            ORDERS,
            lambda: [
                order_mark_paid(
                    order_id=o.pk, deposit_tx_hash=tx_hash(), amount_received=o.amount_crypto
                )
                for o in orders
            ],
        )
        board_ally = make_ally(country="BO")
        timed(
            f"board read ({ORDERS} available orders)",
            50,
            lambda: [list(available_orders(ally=board_ally)) for _ in range(50)],
        )
        with CaptureQueriesContext(connection) as queries:
            list(available_orders(ally=board_ally))
        print(f"{'  queries per board read':<44} {len(queries):>6}")
        half = ORDERS // 2
        timed(
            "order_take",
            half,
            lambda: [
                order_take(order_id=o.pk, ally=a)
                for o, a in zip(orders[:half], allies, strict=False)
            ],
        )
        timed(
            "order_complete (PNG receipt)",
            half,
            lambda: [
                order_complete(order_id=o.pk, ally=a, proof=png_upload())
                for o, a in zip(orders[:half], allies, strict=False)
            ],
        )
        Order.objects.filter(status="AVAILABLE").update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
        expired = timed(
            "orders_expire_due (AVAILABLE -> EXPIRED)", ORDERS - half, orders_expire_due
        )
        assert expired == ORDERS - half, expired
        timed(
            "orders_expire_due with nothing due",
            200,
            lambda: [orders_expire_due() for _ in range(200)],
        )
        timed(
            "user_order_summary",
            200,
            lambda: [list(user_order_summary(user=u)) for u in users[:200]],
        )
        timed("admin_metrics", 50, lambda: [admin_metrics() for _ in range(50)])
        connection.close()


if __name__ == "__main__":
    sys.exit(main())
