import pytest

from tests.chainkit import rpc


@pytest.fixture
def chain():
    """The local chain, put back as it was after the test (like the database's rollback)."""
    snapshot = rpc("evm_snapshot")
    yield
    rpc("evm_revert", snapshot)
