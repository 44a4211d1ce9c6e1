"""`make restore-drill`: prove the backups restore, and that a restored Kibo is safe before
it moves money again.

On a PostgreSQL 15 cluster of its own, archiving WAL with pgBackRest exactly as production
does (archive_timeout 60 s), it takes a full backup, keeps working (orders paid and taken,
a payout signed and mined, a refund), notes a restore point, works on (a payout goes out
and a deposit arrives after it), "loses" the database, restores it to the restore point,
and then checks that:

1. the transfer sender is paused on the restored database, and stays so: the payout the
   restored records still hold is not sent again;
2. `escrow_recover` finds the payout on chain and records it from there, never signing it
   twice, and credits the later deposit from the watcher's checkpoint, once;
3. the books reconcile, and only then the sender resumes.

It prints what it found and how long each step took; exits non-zero when a check fails.
Needs Debian's postgresql-15 and pgbackrest (`make system` installs them).
"""

import argparse
import io
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from devtools.embedded import embedded_services, free_port

PG_BIN = Path(os.environ.get("KIBO_DRILL_PG_BIN", "/usr/lib/postgresql/15/bin"))
STANZA = "kibo"
ARCHIVE_TIMEOUT_SECONDS = 60  # the most commits a lost disk may take with it


class DrillFailed(Exception):
    pass


class Cluster:
    """A PostgreSQL cluster and its pgBackRest repository under one directory, run as the
    `postgres` system user when the drill runs as root (PostgreSQL refuses root)."""

    def __init__(self, root: Path, *, s3: dict[str, str] | None = None):
        self.root, self.s3 = root, s3
        self.data, self.repo, self.run_dir = root / "data", root / "repo", root / "run"
        self.config = root / "pgbackrest.conf"
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else None

    def command(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        run = subprocess.run(
            [*prefix, *args], capture_output=True, text=True, timeout=600, cwd=self.root
        )
        if check and run.returncode != 0:
            raise DrillFailed(f"{' '.join(args[:3])} failed: {run.stderr.strip() or run.stdout}")
        return run

    def pgbackrest(self, *args: str) -> subprocess.CompletedProcess:
        return self.command("pgbackrest", f"--config={self.config}", f"--stanza={STANZA}", *args)

    def create(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        for directory in (self.root, self.repo, self.run_dir, self.root / "log"):
            directory.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            f"""[global]
{self._repository()}
repo1-retention-full=2
repo1-bundle=y
process-max=2
log-path={self.root / "log"}
lock-path={self.root / "run"}
log-level-console=warn
log-level-file=info
start-fast=y

[{STANZA}]
pg1-path={self.data}
pg1-port={self.port}
pg1-socket-path={self.run_dir}
"""
        )
        if self.user:
            owner = pwd.getpwnam(self.user)
            for path in [self.root, *self.root.rglob("*")]:
                os.chown(path, owner.pw_uid, owner.pw_gid)
        self.command(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "--encoding=UTF8", "--locale=C.UTF-8",
        )  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"""
port = {self.port}
listen_addresses = '127.0.0.1'
unix_socket_directories = '{self.run_dir}'
wal_level = replica
archive_mode = on
archive_command = 'pgbackrest --config={self.config} --stanza={STANZA} archive-push %p'
archive_timeout = {ARCHIVE_TIMEOUT_SECONDS}
max_wal_senders = 3
"""
            )

    def _repository(self) -> str:
        """A directory here, or an S3 bucket (as production has it)."""
        if not self.s3:
            return f"repo1-path={self.repo}"
        host, port = self.s3["endpoint"].rsplit(":", 1)
        return f"""repo1-type=s3
repo1-path=/kibo
repo1-s3-bucket={self.s3["bucket"]}
repo1-s3-endpoint={host}
repo1-storage-port={port}
repo1-s3-region={self.s3["region"]}
repo1-s3-uri-style=path
repo1-s3-key={os.environ["AWS_ACCESS_KEY_ID"]}
repo1-s3-key-secret={os.environ["AWS_SECRET_ACCESS_KEY"]}
repo1-storage-ca-file={self.s3["ca_file"]}"""

    def start(self) -> None:
        self.command(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log" / "pg.log"),
            "-w", "-t", "300", "start",
        )  # fmt: skip
        deadline = time.monotonic() + 300
        while self.sql("SELECT pg_is_in_recovery()") != "f":  # a restore promotes first
            if time.monotonic() > deadline:
                raise DrillFailed("the restored database never left recovery")
            time.sleep(0.2)

    def stop(self, mode: str = "fast") -> None:
        self.command(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def sql(self, statement: str, database: str = "postgres") -> str:
        return self.command(
            str(PG_BIN / "psql"), "-h", str(self.run_dir), "-p", str(self.port), "-U",
            "postgres", "-d", database, "-AXtc", statement,
        ).stdout.strip()  # fmt: skip

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/kibo"


class Steps:
    """Each step's time, printed as it ends."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def step(self, name: str):
        started = time.perf_counter()
        yield
        self.seconds[name] = time.perf_counter() - started
        print(f"  {self.seconds[name]:7.2f} s  {name}", flush=True)


def check(condition: bool, what: str) -> None:
    print(f"  {'ok' if condition else 'FAILED':>9}  {what}", flush=True)
    if not condition:
        raise DrillFailed(what)


def receipt():
    """A receipt picture, different each time (one receipt proves one payment)."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    picture = Image.new("RGB", (360, 640), "white")
    picture.paste(Image.frombytes("RGB", (40, 20), secrets.token_bytes(2400)), (100, 150))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return SimpleUploadedFile("comprobante.png", buffer.getvalue(), content_type="image/png")


def drill(cluster: Cluster) -> None:
    steps = Steps()
    where = f"S3 bucket {cluster.s3['bucket']}" if cluster.s3 else "a local directory"
    print(
        f"Restore drill in {cluster.root} (PostgreSQL 15, pgBackRest to {where}, the local chain)"
    )
    with steps.step("create the cluster, start archiving WAL"):
        cluster.create()
        cluster.start()
        cluster.sql("CREATE DATABASE kibo")
        cluster.pgbackrest("stanza-create")
        cluster.pgbackrest("check")
    os.environ["DATABASE_URL"] = cluster.url
    with embedded_services("drill"):  # the local chain and the broker; the database is ours
        import django

        os.environ["DJANGO_SETTINGS_MODULE"] = "kibo.settings.local"
        os.environ.setdefault("KIBO_LOG_LEVEL", "WARNING")  # the drill's own lines, only
        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connection
        from django.utils import timezone
        from eth_account import Account
        from web3 import Web3

        from devtools.localchain import mint_local, pay_from
        from devtools.management.commands.seed_demo import DEMO_ALLIES
        from devtools.management.commands.seed_demo import Command as Demo
        from escrow import chain
        from escrow.amounts import to_base_units
        from escrow.deposits import deposits_watch
        from escrow.models import Transfer
        from escrow.networks import network_spec
        from escrow.recovery import recover
        from escrow.selectors import escrow_address
        from escrow.sender import sender_paused
        from escrow.transfers import transfer_process, transfer_unhold
        from kibo.backups import backups_record
        from kibo.models import Backup, Country, User
        from orders.models import Order, OrderStatus
        from orders.payments import deposit_verify
        from orders.services import (
            order_complete,
            order_confirm_paid,
            order_take,
            orders_expire_due,
        )

        with steps.step("migrate and load the demo data"):
            call_command("migrate", verbosity=0)
            call_command("seed_demo", stdout=io.StringIO())
        demo = Demo()
        usdt = network_spec("local").token("USDT")
        staff = User.objects.get(username="admin")
        allies = []
        for _ in range(3):
            address = Account.create().address
            demo.demo_ally(address, Country.BOLIVIA, staff)
            allies.append(User.objects.get(wallet_address=address))
        allies.append(User.objects.get(wallet_address=DEMO_ALLIES[Country.BOLIVIA]))

        def payer() -> tuple[User, str]:
            """A Bolivian payer with test USDT and gas on the local chain, and its key."""
            account = Account.create()
            rpc = network_spec("local").rpc_urls[0]
            Web3(Web3.HTTPProvider(rpc)).provider.make_request(
                "anvil_setBalance", [account.address, hex(10**18)]
            )
            mint_local(rpc, token_address=usdt.address, to=account.address, amount_base=10**9)
            user = User.objects.create_user(account.address, country=Country.BOLIVIA)
            return user, account.key.hex()

        def pay(order: Order, key: str) -> None:
            amount = to_base_units(order.amount_crypto, usdt.decimals, round_up=True)
            tx = pay_from("local", private_key=key, token=usdt, to=escrow_address(),
                          amount_base=amount)  # fmt: skip
            deposit_verify(order=order, tx_hash=tx)

        def paid_order() -> Order:
            user, key = payer()
            order = demo.demo_order(user)
            pay(order, key)
            return Order.objects.get(pk=order.pk)

        def completed(ally) -> Transfer:
            order = paid_order()
            order_take(order_id=order.pk, ally=ally)
            order_complete(order_id=order.pk, ally=ally, proof=receipt())
            return Transfer.objects.get(order=order, purpose=Transfer.Purpose.RELEASE)

        def sent(transfer: Transfer) -> Transfer:
            for _ in range(20):
                done = transfer_process(transfer_id=transfer.pk)
                if done.status == Transfer.Status.CONFIRMED:
                    return done
            raise DrillFailed(f"transfer {transfer.pk} did not settle: {done.last_error}")

        with steps.step("full backup (pgbackrest backup --type=full)"):
            cluster.pgbackrest("--type=full", "backup")
        with steps.step("beat reads the repository (kibo.backups)"):
            settings.KIBO_PGBACKREST_CONFIG = str(cluster.config)
            check(backups_record() == 1, "the repository holds one good full backup")
            newest = Backup.objects.get()
            print(
                f"  {newest.label}: {newest.database_bytes / 2**20:.1f} MiB of database, "
                f"{newest.repository_bytes / 2**20:.1f} MiB in the repository",
                flush=True,
            )

        with steps.step("keep working: a payout and a refund on chain, orders paid and taken"):
            paid_out = completed(allies[0])
            order_confirm_paid(order_id=paid_out.order_id, user=paid_out.order.user)
            sent(paid_out)
            refunded = paid_order()
            Order.objects.filter(pk=refunded.pk).update(expires_at=timezone.now())
            orders_expire_due()
            refund = sent(Transfer.objects.get(order=refunded, purpose=Transfer.Purpose.REFUND))
            taken = paid_order()
            order_take(order_id=taken.pk, ally=allies[1])
            held = completed(allies[2])
            late_payer, late_key = payer()
            late = demo.demo_order(late_payer)  # its payment comes after the restore point
            deposits_watch(network="local")  # the watcher's checkpoint
        restore_point = cluster.sql("SELECT now()", database="kibo")
        print(f"  restore point: {restore_point}", flush=True)
        time.sleep(1)

        with steps.step("after the restore point: the held payout goes out, a deposit comes"):
            order_confirm_paid(order_id=held.order_id, user=held.order.user)
            held_tx = sent(held).mined_tx_hash
            pay(late, late_key)
            check(
                Order.objects.get(pk=late.pk).status == OrderStatus.AVAILABLE,
                "the late deposit was credited",
            )
            escrow_nonce = chain.nonce_of("local", held.from_address)
        with steps.step("archive the last WAL (pgbackrest check)"):
            cluster.pgbackrest("check")

        connection.close()
        with steps.step('"lose" the database: stop at once, delete its directory'):
            cluster.stop("immediate")
            shutil.rmtree(cluster.data)
        with steps.step("restore to the restore point (pgbackrest restore --type=time)"):
            cluster.data.mkdir()
            if cluster.user:
                owner = pwd.getpwnam(cluster.user)
                os.chown(cluster.data, owner.pw_uid, owner.pw_gid)
            cluster.data.chmod(0o700)
            cluster.pgbackrest(
                "--type=time", f"--target={restore_point}", "--target-action=promote", "restore"
            )
            cluster.start()

        print("The restored database:", flush=True)
        walfile = cluster.sql("SELECT pg_walfile_name(pg_current_wal_lsn())")
        print(f"  on timeline {int(walfile[:8], 16)}", flush=True)
        check(
            Transfer.objects.get(pk=paid_out.pk).status == Transfer.Status.CONFIRMED
            and Transfer.objects.get(pk=refund.pk).status == Transfer.Status.CONFIRMED,
            "the payout and the refund before the restore point are back, confirmed",
        )
        check(
            Order.objects.get(pk=taken.pk).status == OrderStatus.TAKEN,
            "the order taken before the restore point is back, taken",
        )
        check(
            Transfer.objects.get(pk=held.pk).status == Transfer.Status.HELD,
            "the payout sent after the restore point is, in the records, still held",
        )
        check(
            Order.objects.get(pk=late.pk).status == OrderStatus.PENDING_PAYMENT,
            "the order paid after the restore point waits for its payment again",
        )

        with steps.step("the sender refuses to send"):
            transfer_unhold(transfer_id=held.pk, by="timer")  # as beat would, hold over
            check(bool(sender_paused()), "the sender paused itself on the new timeline")
            transfer_process(transfer_id=held.pk)
            check(
                Transfer.objects.get(pk=held.pk).status == Transfer.Status.PENDING
                and chain.nonce_of("local", held.from_address) == escrow_nonce,
                "the held payout was not signed or sent again",
            )

        with steps.step("escrow_recover: rescan, match the chain, reconcile"):
            recovery = recover()
        for network in recovery.networks:
            for line in network.recovered:
                print(f"  recovered  {line}", flush=True)
            for line in network.unmatched:
                print(f"  UNMATCHED  {line}", flush=True)
        recovered = Transfer.objects.get(pk=held.pk)
        check(
            recovered.status == Transfer.Status.CONFIRMED
            and recovered.mined_tx_hash == held_tx
            and recovered.signed.count() == 1,
            "the payout was recovered from the chain (its own transaction), not signed again",
        )
        check(
            Order.objects.get(pk=late.pk).status == OrderStatus.AVAILABLE
            and sum(n.deposits_credited for n in recovery.networks) == 1,
            "the deposit after the restore point was credited from the checkpoint, once",
        )
        check(all(line.ok for line in recovery.books), "escrow_reconcile is clean")
        check(recovery.resumed and not sender_paused(), "only then the sender resumes")
        transfer_process(transfer_id=held.pk)
        check(
            chain.nonce_of("local", held.from_address) == escrow_nonce,
            "sending again pays nobody twice",
        )
        connection.close()
    cluster.stop()
    restore = steps.seconds["restore to the restore point (pgbackrest restore --type=time)"]
    print(
        f"The drill passed. Data loss bound: archive_timeout {ARCHIVE_TIMEOUT_SECONDS} s. "
        f"Restore and recovery took {restore:.1f} s here (the target: back in 2 hours)."
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workdir", type=Path, help="where the cluster and its repository go (default: a new "
        "directory under the system's temporary one, removed when the drill passes)",
    )  # fmt: skip
    parser.add_argument(
        "--s3-endpoint", help="back up to S3 at this host:port (HTTPS) instead of a directory; "
        "credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    )  # fmt: skip
    parser.add_argument("--s3-bucket", default="kibo-backups")
    parser.add_argument("--s3-region", default="us-east-1")
    parser.add_argument("--s3-ca-file", help="the CA that signed the endpoint's certificate")
    options = parser.parse_args()
    missing = [
        p for p in (PG_BIN / "initdb", Path(shutil.which("pgbackrest") or "")) if not p.is_file()
    ]
    if missing:
        print(f"Missing {missing}: run `make system` (postgresql-15, pgbackrest).")
        return 2
    # Somewhere the postgres user can reach (it cannot enter a root-only directory).
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="kibo-drill-"))
    s3 = None
    if options.s3_endpoint:
        s3 = {
            "endpoint": options.s3_endpoint,
            "bucket": options.s3_bucket,
            "region": options.s3_region,
            "ca_file": options.s3_ca_file or "/etc/ssl/certs/ca-certificates.crt",
        }
    cluster = Cluster(workdir.resolve(), s3=s3)
    try:
        drill(cluster)
    except DrillFailed as failure:
        print(f"The drill FAILED: {failure} (its files: {workdir})")
        cluster.command(str(PG_BIN / "pg_ctl"), "-D", str(cluster.data), "-m", "immediate",
                        "stop", check=False)  # fmt: skip
        return 1
    if options.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
