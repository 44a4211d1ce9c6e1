"""Audit history past AUDIT_RETENTION_MONTHS leaves the database a month at a time, and only
once a verified copy is in S3 (README: Operations, Audit log retention).

For each monthly partition wholly older than the window (`logs_partitions_due`),
`logs_partition_archive`:

1. detaches it from `logs` (its rows leave the live log, none is deleted);
2. streams it out as CSV through gzip, counting the rows and hashing the bytes (SHA-256);
3. uploads the file and a manifest (partition, bounds, rows, SHA-256, bytes) to the
   archive bucket; a bucket with Object Lock keeps both unchangeable for its retention;
4. reads the file back from the bucket: the same SHA-256 and, decompressed and parsed, the
   same number of rows as the table holds;
5. only then drops the table, and writes AUDIT_ARCHIVED into the log.

Anything failing leaves the detached table where it is (ArchiveFailed); the next run starts
again from step 2 for it. Nothing is dropped unverified.
"""

import csv
import gzip
import hashlib
import io
import json
import re
import tempfile
from dataclasses import asdict, dataclass
from datetime import date

from django.db import connection, transaction
from django.utils import timezone

from audit.models import Action
from audit.partitions import month_start
from audit.services import log_action

PARTITION_NAME = re.compile(r"^logs_y(\d{4})m(\d{2})$")
COLUMNS = ("id", "order_id", "action", "actor_wallet", "metadata", "created_at")


class ArchiveFailed(Exception):
    pass


@dataclass(frozen=True)
class Archive:
    """Where archives go: an S3 bucket (a boto3 client for it) and a key prefix."""

    client: object
    bucket: str
    prefix: str = "audit/"


@dataclass(frozen=True)
class Manifest:
    partition: str
    first_day: str  # the month's bounds, UTC: [first_day, next month's first day)
    until: str
    rows: int
    sha256: str  # of the .csv.gz file as stored
    bytes: int
    columns: tuple[str, ...]
    archived_at: str
    object_lock: str  # the bucket's Object Lock mode on the file, or "none"


def _month(name: str) -> date | None:
    match = PARTITION_NAME.match(name)
    return date(int(match[1]), int(match[2]), 1) if match else None


def logs_partitions_due(*, today: date, retention_months: int) -> list[str]:
    """Monthly partitions, attached or left detached by an interrupted run, whose whole month
    is older than the retention window; oldest first."""
    keep_from = month_start(today, plus=-retention_months)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class "
            "WHERE relkind = 'r' AND relname ~ '^logs_y[0-9]{4}m[0-9]{2}$'"
        )
        names = [name for (name,) in cursor.fetchall()]
    return sorted(name for name in names if month_start(_month(name), plus=1) <= keep_from)


def _attached(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_inherits WHERE inhparent = 'logs'::regclass "
            "AND inhrelid = to_regclass(%s)",
            [name],
        )
        return cursor.fetchone() is not None


def _export(name: str, into) -> tuple[int, str, int]:
    """COPY the table out as gzip'd CSV into the file; (rows, SHA-256 of the file, bytes)."""
    table = connection.ops.quote_name(name)  # a partition's own name, matched by PARTITION_NAME
    copy_out = (
        f"COPY (SELECT {', '.join(COLUMNS)} FROM {table} ORDER BY created_at, id) "  # nosec B608
        "TO STDOUT WITH (FORMAT csv, HEADER)"
    )
    with gzip.GzipFile(fileobj=into, mode="wb", mtime=0) as gz, connection.cursor() as cursor:
        with cursor.cursor.copy(copy_out) as copy:
            for chunk in copy:
                gz.write(chunk)
        cursor.execute(f"SELECT count(*) FROM {table}")  # nosec B608
        (rows,) = cursor.fetchone()
    into.seek(0)
    digest, size = hashlib.sha256(), 0
    for block in iter(lambda: into.read(1 << 20), b""):
        digest.update(block)
        size += len(block)
    into.seek(0)
    return rows, digest.hexdigest(), size


def _read_back(archive: Archive, key: str) -> tuple[int, str]:
    """The stored file's (rows, SHA-256), read from the bucket."""
    body = archive.client.get_object(Bucket=archive.bucket, Key=key)["Body"].read()
    digest = hashlib.sha256(body).hexdigest()
    with gzip.open(io.BytesIO(body), mode="rt", newline="") as text:
        rows = sum(1 for _ in csv.reader(text)) - 1  # the header
    return rows, digest


def logs_partition_archive(name: str, *, archive: Archive) -> Manifest:
    """Archive one monthly partition to S3, verify it there, then drop it (see the module)."""
    month = _month(name)
    if month is None:
        raise ArchiveFailed(f"{name} is not a monthly partition of the audit log")
    if _attached(name):
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE logs DETACH PARTITION {connection.ops.quote_name(name)}")
    key = f"{archive.prefix}{name}.csv.gz"
    with tempfile.TemporaryFile() as exported:
        rows, sha256, size = _export(name, exported)
        archive.client.put_object(
            Bucket=archive.bucket,
            Key=key,
            Body=exported,
            ContentType="application/gzip",
            ChecksumAlgorithm="SHA256",
        )
    stored = archive.client.head_object(Bucket=archive.bucket, Key=key)
    manifest = Manifest(
        partition=name,
        first_day=month.isoformat(),
        until=month_start(month, plus=1).isoformat(),
        rows=rows,
        sha256=sha256,
        bytes=size,
        columns=COLUMNS,
        archived_at=timezone.now().isoformat(),
        object_lock=stored.get("ObjectLockMode", "none"),
    )
    archive.client.put_object(
        Bucket=archive.bucket,
        Key=f"{archive.prefix}{name}.manifest.json",
        Body=json.dumps(asdict(manifest), indent=2).encode(),
        ContentType="application/json",
    )
    read_rows, read_sha256 = _read_back(archive, key)
    if (read_rows, read_sha256) != (rows, sha256):
        raise ArchiveFailed(
            f"{name}: the bucket holds {read_rows} rows with SHA-256 {read_sha256}, not "
            f"{rows} rows with {sha256}; the table stays (detached) for the next run"
        )
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {connection.ops.quote_name(name)}")
        log_action(action=Action.AUDIT_ARCHIVED, metadata={**asdict(manifest), "key": key})
    return manifest
