from django.db import transaction


def rollback_scope() -> transaction.Atomic:
    """A transaction the test opens only to roll back what happens inside (an exception
    out of it), marked as Django marks a TestCase's own: a durable block inside (signing a
    transfer, a sweep's batch) runs as it does at the top level in production."""
    block = transaction.atomic()
    block._from_testcase = True
    return block
