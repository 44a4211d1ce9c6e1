"""A refund is its REFUND transfer: the refund_jobs table repeated that transfer's state
(pending, processing, confirmed with its hash, failed) and was kept in step by hand.

Every refund job was created in the same transaction as its order's REFUND transfer, so
dropping the table loses nothing: the transfer keeps the recipient, the amount, the status,
the attempts, the last error and every signed transaction (the mined one's hash), and the
audit log keeps REFUND_PROCESSED with the hash. The migration refuses to run if a job has
no REFUND transfer. Unapplied, it rebuilds the jobs from the transfers.
"""

from django.db import migrations

JOB_STATUS = {  # a REFUND transfer's status, as a refund job told it
    "PENDING": "PENDING",
    "WAITING": "PENDING",
    "SIGNED": "PROCESSING",
    "CONFIRMED": "COMPLETED",
    "FAILED": "FAILED",
}


def check_every_job_has_its_transfer(apps, schema_editor):
    RefundJob = apps.get_model("escrow", "RefundJob")
    Transfer = apps.get_model("escrow", "Transfer")
    refunded = Transfer.objects.filter(purpose="REFUND").values("order_id")
    orphans = list(
        RefundJob.objects.exclude(order_id__in=refunded).values_list("order_id", flat=True)[:10]
    )
    if orphans:
        raise RuntimeError(
            f"Refund jobs without a REFUND transfer (orders {', '.join(map(str, orphans))}): "
            "queue their transfers before dropping the refund jobs."
        )


def rebuild_jobs_from_transfers(apps, schema_editor):
    RefundJob = apps.get_model("escrow", "RefundJob")
    Transfer = apps.get_model("escrow", "Transfer")
    EscrowAccount = apps.get_model("escrow", "EscrowAccount")
    amounts = dict(EscrowAccount.objects.values_list("order_id", "amount"))
    RefundJob.objects.bulk_create(
        RefundJob(
            order_id=t.order_id,
            to_address=t.recipient,
            amount=amounts[t.order_id],
            token=t.token,
            network=t.network,
            status=JOB_STATUS.get(t.status, "PENDING"),
            attempts=t.attempts,
            last_error=t.last_error,
            tx_hash=t.mined_tx_hash if t.status == "CONFIRMED" else None,
            processed_at=t.confirmed_at,
        )
        for t in Transfer.objects.filter(purpose="REFUND").iterator()
    )


class Migration(migrations.Migration):
    dependencies = [("escrow", "0010_held_or_frozen_index")]

    operations = [
        migrations.RunPython(check_every_job_has_its_transfer, rebuild_jobs_from_transfers),
        migrations.DeleteModel(name="RefundJob"),
    ]
