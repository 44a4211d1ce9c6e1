from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from escrow.amounts import format_base_units
from escrow.chain import ChainUnavailable
from escrow.selectors import reconcile
from kibo import config
from orders.selectors import stuck_obligations


class Command(BaseCommand):
    help = (
        "Compare the escrow wallet's on-chain balance per network and token with Kibo's "
        "records, and list the money Kibo owes that has not gone out. Exits non-zero on a "
        "mismatch or a stuck obligation."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--stuck-minutes",
            type=int,
            help="how old an unpaid payout or refund must be to count as stuck "
            "(default: SYSTEM_CONFIG RECONCILE_STUCK_MINUTES)",
        )

    def handle(self, *args, stuck_minutes=None, **options):
        minutes = stuck_minutes or config.RECONCILE_STUCK_MINUTES.get()
        try:
            lines = reconcile()
        except ChainUnavailable as error:
            raise CommandError(str(error)) from None
        mismatches = 0
        for line in lines:
            verdict = "ok" if line.ok else "MISMATCH"
            mismatches += not line.ok
            note = "" if line.exact else " (gas coin: may hold more, never less)"
            self.stdout.write(
                f"{verdict:<8} {line.network:<15} {line.token:<5} on chain {line.on_chain} "
                f"expected {line.expected} difference {line.difference:+d} "
                f"locked {line.locked} at block {line.block}{note}"
            )
            if line.surplus:
                (surplus,) = format_base_units(
                    line.surplus, decimals=line.decimals, symbol=line.token
                )
                self.stdout.write(
                    f"{'warning':<8} {line.network:<15} {line.token:<5} {surplus} on chain that "
                    "no record explains: native coin sent by a contract's internal call (e.g. "
                    "a smart-contract wallet), which the deposit watcher cannot see, or funds "
                    "from before Kibo kept records. Check the escrow address's internal "
                    "transactions."
                )
        stuck = stuck_obligations(older_than=timedelta(minutes=minutes))
        for obligation in stuck:
            self.stdout.write(f"{'STUCK':<8} {obligation}")
        if mismatches or stuck:
            raise CommandError(
                f"{mismatches} balance(s) do not match the records; "
                f"{len(stuck)} obligation(s) are stuck (unpaid after {minutes} minutes, "
                "failed, or waiting for funds)."
            )
        self.stdout.write("Escrow reconciles; nothing owed is stuck.")
