"""`make restore-drill` passes here: a real pgBackRest backup of a real PostgreSQL, restored
to a point in time, and the restored Kibo proven safe before it sends money again."""

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import boto3
import pytest
from moto.moto_server.werkzeug_app import MotoRequestHandler
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

from devtools.embedded import free_port
from kibo.env import BASE_DIR

pytestmark = pytest.mark.slow  # a PostgreSQL cluster, a backup, a restore


def drill(*options: str, **env: str) -> str:
    run = subprocess.run(
        [sys.executable, "-m", "devtools.restore_drill", *options],
        cwd=BASE_DIR,
        env={
            **{
                key: value
                for key, value in os.environ.items()
                if key not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
                and not key.startswith("KIBO_")  # its own cluster, broker and chain
            },
            **env,
        },
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    return run.stdout


def test_the_restore_drill_passes_and_prints_its_timings():
    out = drill()
    for step in (
        "full backup (pgbackrest backup --type=full)",
        "restore to the restore point (pgbackrest restore --type=time)",
        "escrow_recover: rescan, match the chain, reconcile",
    ):
        assert re.search(rf"\d+\.\d\d s  {re.escape(step)}", out), out
    for verdict in (
        "the repository holds one good full backup",
        "the payout sent after the restore point is, in the records, still held",
        "the sender paused itself on the new timeline",
        "the held payout was not signed or sent again",
        "the payout was recovered from the chain (its own transaction), not signed again",
        "the deposit after the restore point was credited from the checkpoint, once",
        "escrow_reconcile is clean",
        "only then the sender resumes",
        "sending again pays nobody twice",
    ):
        assert f"ok  {verdict}" in out, out
    assert "FAILED" not in out and "The drill passed" in out


class TlsS3Handler(MotoRequestHandler):
    """moto's request handler, speaking HTTP/1.1 and ending each TLS session properly
    (close_notify): pgBackRest's OpenSSL 3 takes a bare close for a cut connection."""

    protocol_version = "HTTP/1.1"

    def finish(self):
        super().finish()
        with contextlib.suppress(OSError):  # the client went first
            self.connection.unwrap()


@pytest.fixture
def s3_over_tls(tmp_path_factory):
    """moto's S3 behind HTTPS (pgBackRest speaks only TLS to S3), with a certificate of its
    own for localhost; yields the endpoint and the certificate file."""
    directory = Path(tempfile.mkdtemp(prefix="kibo-s3-tls-"))  # readable by postgres too
    directory.chmod(0o755)
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    cert.chmod(0o644)
    port = free_port()
    server = make_server(
        "::",  # both ::1 and 127.0.0.1: "localhost" may be either
        port,
        DomainDispatcherApplication(create_backend_app),
        threaded=True,
        request_handler=TlsS3Handler,
        ssl_context=(str(cert), str(key)),
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"localhost:{port}", cert  # pgBackRest matches a host name, not an address
    server.shutdown()
    shutil.rmtree(directory, ignore_errors=True)


def test_the_drill_backs_up_to_s3_and_restores_from_it(s3_over_tls):
    endpoint, cert = s3_over_tls
    credentials = {"AWS_ACCESS_KEY_ID": "drill", "AWS_SECRET_ACCESS_KEY": "drill-secret"}
    s3 = boto3.client(
        "s3",
        endpoint_url=f"https://{endpoint}",
        region_name="us-east-1",
        verify=str(cert),
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
    )
    s3.create_bucket(Bucket="kibo-backups")

    out = drill("--s3-endpoint", endpoint, "--s3-ca-file", str(cert), **credentials)

    assert "pgBackRest to S3 bucket kibo-backups" in out and "The drill passed" in out
    stored = [o["Key"] for o in s3.list_objects_v2(Bucket="kibo-backups")["Contents"]]
    assert any(key.startswith("kibo/backup/kibo/") for key in stored)
    assert any(key.startswith("kibo/archive/kibo/") for key in stored)  # the WAL too
