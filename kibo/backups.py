"""What pgBackRest's repository holds, read by beat so the operator's metrics can say how old
the last good backup is (README: Operations, Backups).

Kibo reads the repository itself (`pgbackrest info`), as a restore would, rather than
trusting the database host to report its own backups: a backup counts only once it is in
the repository (local in development, S3 in production) and pgBackRest found no error in
it. Configure with KIBO_PGBACKREST_CONFIG (a pgbackrest.conf that reaches the repository,
read-only credentials suffice) and KIBO_PGBACKREST_STANZA.
"""

import json
import shutil
import subprocess  # nosec B404: runs pgBackRest, a fixed program with fixed arguments
from datetime import UTC, datetime

from django.conf import settings

from kibo.models import Backup


class BackupsUnreadable(Exception):
    pass


def repository_backups(*, config: str, stanza: str) -> list[dict]:
    """pgBackRest's own account of the stanza's backups (its `info --output=json`)."""
    program = shutil.which("pgbackrest")
    if program is None:
        raise BackupsUnreadable("pgbackrest is not installed here")
    run = subprocess.run(  # nosec B603: no shell, the arguments are settings, not input
        [
            program,
            f"--config={config}",
            f"--stanza={stanza}",
            "--log-level-console=warn",
            "--log-level-file=off",
            "--output=json",
            "info",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if run.returncode != 0:
        raise BackupsUnreadable(run.stderr.strip() or f"pgbackrest exited {run.returncode}")
    stanzas = json.loads(run.stdout)
    if not stanzas or stanzas[0].get("status", {}).get("code") not in (0, None):
        message = stanzas[0]["status"]["message"] if stanzas else "no stanza"
        raise BackupsUnreadable(f"stanza {stanza}: {message}")
    return stanzas[0].get("backup", [])


def backups_record() -> int:
    """Record the repository's good backups (beat). Returns how many it holds; 0 and nothing
    done when no repository is configured."""
    if not settings.KIBO_PGBACKREST_CONFIG:
        return 0
    found = repository_backups(
        config=settings.KIBO_PGBACKREST_CONFIG, stanza=settings.KIBO_PGBACKREST_STANZA
    )
    good = [backup for backup in found if not backup.get("error")]
    for backup in good:
        when = backup["timestamp"]
        Backup.objects.update_or_create(
            label=backup["label"],
            defaults={
                "kind": backup["type"],
                "started_at": datetime.fromtimestamp(when["start"], tz=UTC),
                "finished_at": datetime.fromtimestamp(when["stop"], tz=UTC),
                "database_bytes": backup["info"]["size"],
                "repository_bytes": backup["info"]["repository"]["size"],
                "wal_start": (backup.get("archive") or {}).get("start") or "",
                "wal_stop": (backup.get("archive") or {}).get("stop") or "",
            },
        )
    Backup.objects.exclude(label__in=[b["label"] for b in good]).delete()  # expired
    return len(good)
