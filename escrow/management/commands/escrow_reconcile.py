from django.core.management.base import BaseCommand, CommandError

from escrow.chain import ChainUnavailable
from escrow.selectors import reconcile


class Command(BaseCommand):
    help = (
        "Compare the escrow wallet's on-chain balance per network and token with Kibo's "
        "records. Exits non-zero when any differs."
    )

    def handle(self, *args, **options):
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
                f"locked {line.locked}{note}"
            )
        if mismatches:
            raise CommandError(f"{mismatches} balance(s) do not match the records.")
        self.stdout.write("Escrow reconciles.")
