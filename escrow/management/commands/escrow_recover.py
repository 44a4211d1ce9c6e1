from django.core.management.base import BaseCommand, CommandError

from escrow.amounts import format_base_units
from escrow.chain import ChainUnavailable
from escrow.recovery import recover
from escrow.sender import sender_paused


class Command(BaseCommand):
    help = (
        "After a restore or a failover: credit the deposits after the watcher's checkpoint, "
        "match the escrow wallet's transactions on chain to the records (recovering, never "
        "re-signing, those the records lack), reconcile, and only if all is clean let the "
        "transfer sender send again. Prints what it found and how long each step took; "
        "exits non-zero while the sender stays paused."
    )

    def handle(self, *args, **options):
        paused = sender_paused()
        self.stdout.write(f"sender: {'paused (' + paused + ')' if paused else 'sending'}")
        try:
            recovery = recover()
        except ChainUnavailable as error:
            raise CommandError(f"{error} The sender stays paused.") from None
        for network in recovery.networks:
            self.stdout.write(
                f"{network.network}: the records' next nonce {network.records_next_nonce}, "
                f"the chain's {network.chain_next_nonce}; "
                f"{network.deposits_credited} deposit(s) credited from the checkpoint"
            )
            for found in network.recovered:
                self.stdout.write(f"  recovered  {found}")
            for unexplained in network.unmatched:
                self.stdout.write(f"  UNMATCHED  {unexplained}")
        for book in recovery.books:
            (difference,) = format_base_units(
                book.difference, decimals=book.decimals, symbol=book.token
            )
            verdict = "ok" if book.ok else "MISMATCH"
            self.stdout.write(f"  {verdict:<9}  {book.network} {book.token}: {difference}")
        for step, seconds in recovery.seconds.items():
            self.stdout.write(f"  {seconds:7.2f} s  {step}")
        if not recovery.resumed:
            raise CommandError(
                "Not clean: the sender stays paused. Resolve what is listed above (README: "
                "Operations, Restore), then run escrow_recover again."
            )
        self.stdout.write("clean: the sender sends again")
