"""Audit months past AUDIT_RETENTION_MONTHS leave the database only as a verified copy in
S3 (a real S3 server, moto's): archived, read back, and only then dropped."""

import csv
import gzip
import hashlib
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from django.db import connection
from django.utils import timezone

from audit.models import Action, Log
from audit.partitions import month_start
from audit.retention import Archive
from kibo.maintenance import audit_log_maintain

pytestmark = pytest.mark.django_db


@pytest.fixture
def archive(s3_server):
    """A fresh bucket with Object Lock (compliance, a year) as production should have."""
    client = boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id="kibo-test",
        aws_secret_access_key="kibo-test-secret",
    )
    bucket = f"kibo-audit-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    client.put_object_lock_configuration(
        Bucket=bucket,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 365}},
        },
    )
    return Archive(client=client, bucket=bucket)


def month_with_entries(months_ago: int, count: int) -> tuple[str, list[str]]:
    """A month's partition, `months_ago` before this one, holding `count` entries."""
    month = month_start(timezone.now().date(), plus=-months_ago)
    ids = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT logs_partition_create(%s)", [month])
        (name,) = cursor.fetchone()
        for n in range(count):
            at = datetime(month.year, month.month, 1, tzinfo=UTC) + timedelta(days=n, hours=3)
            metadata = json.dumps(
                {"note": f'line one\nline "two", {n}', "tx_hash": "0x" + "a" * 64}
            )
            cursor.execute(
                "INSERT INTO logs (id, action, metadata, created_at) "
                "VALUES (gen_random_uuid(), 'CONFIG_CHANGED', %s, %s) RETURNING id",
                [metadata, at],
            )
            ids.append(str(cursor.fetchone()[0]))
        # as if written long ago: no foreign-key check left pending in this transaction
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    return name, ids


def exists(table: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
        return cursor.fetchone()[0]


def test_months_past_retention_are_archived_verified_and_only_then_dropped(archive):
    # given 26 and 25 months ago (past the 24 kept) and 23 months ago (kept)
    oldest, oldest_ids = month_with_entries(26, 3)
    older, _ = month_with_entries(25, 2)
    kept, kept_ids = month_with_entries(23, 2)

    upkeep = audit_log_maintain(today=timezone.now().date(), archive=archive)

    assert upkeep.archived == [oldest, older] and not upkeep.failed
    assert not exists(oldest) and not exists(older) and exists(kept)
    assert not Log.objects.filter(pk__in=oldest_ids).exists()
    assert Log.objects.filter(pk__in=kept_ids).count() == 2
    stored = archive.client.get_object(Bucket=archive.bucket, Key=f"audit/{oldest}.csv.gz")
    body = stored["Body"].read()
    manifest = json.loads(
        archive.client.get_object(Bucket=archive.bucket, Key=f"audit/{oldest}.manifest.json")[
            "Body"
        ].read()
    )
    assert manifest["rows"] == 3 and manifest["sha256"] == hashlib.sha256(body).hexdigest()
    assert manifest["object_lock"] == "COMPLIANCE" and stored["ObjectLockMode"] == "COMPLIANCE"
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(body).decode())))
    assert sorted(row["id"] for row in rows) == sorted(oldest_ids)
    assert json.loads(rows[0]["metadata"])["note"].startswith("line one\nline")
    recorded = Log.objects.filter(action=Action.AUDIT_ARCHIVED).order_by("created_at")
    assert [entry.metadata["partition"] for entry in recorded] == [oldest, older]


def test_a_copy_that_does_not_read_back_the_same_keeps_the_month(archive):
    # given a month past retention, and a bucket that hands back different bytes
    oldest, ids = month_with_entries(30, 2)

    def corrupted(parsed, **_):
        parsed["Body"] = io.BytesIO(gzip.compress(b"id,order_id\\n"))

    archive.client.meta.events.register("after-call.s3.GetObject", corrupted)
    upkeep = audit_log_maintain(today=timezone.now().date(), archive=archive)

    # then nothing is dropped: the month waits, detached, for the next run
    assert upkeep.archived == [] and oldest in upkeep.failed
    assert exists(oldest)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {oldest}")
        assert cursor.fetchone()[0] == 2
    assert not Log.objects.filter(action=Action.AUDIT_ARCHIVED).exists()

    # and the next run, reading back what it wrote, archives it
    archive.client.meta.events.unregister("after-call.s3.GetObject", corrupted)
    assert audit_log_maintain(today=timezone.now().date(), archive=archive).archived == [oldest]
    assert not exists(oldest) and not Log.objects.filter(pk__in=ids).exists()


def test_without_an_archive_bucket_nothing_is_dropped():
    oldest, ids = month_with_entries(40, 1)
    upkeep = audit_log_maintain(today=timezone.now().date(), archive=None)
    assert upkeep.archived == [] and exists(oldest)
    assert Log.objects.filter(pk__in=ids).exists()
