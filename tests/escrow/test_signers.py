import pytest

from escrow.models import Transfer
from escrow.services import escrow_signer_problem
from escrow.signers import LocalKeySigner, SignerUnavailable, escrow_signer
from tests.helpers.money import completed_order, settle
from tests.helpers.signers import ESCROW_KEY, RemoteSigner


@pytest.fixture
def signer_from_settings(settings):
    """KIBO_ESCROW_SIGNER as the test sets it; the process's signer is made anew."""
    escrow_signer.cache_clear()
    yield settings
    escrow_signer.cache_clear()


@pytest.mark.slow  # a payout settled on the chain
@pytest.mark.django_db
@pytest.mark.usefixtures("chain")
def test_another_signer_is_a_class_named_in_the_settings(signer_from_settings):
    # given a deployment whose signer is not the key in the environment (a KMS, say)
    signer_from_settings.KIBO_ESCROW_SIGNER = "tests.helpers.signers.RemoteSigner"
    RemoteSigner.signed.clear()
    assert escrow_signer_problem() is None
    # when a payout goes out
    _, _, release = completed_order()
    settled = settle(release)
    # then that signer signed it, and it is paid as ever
    assert settled.status == Transfer.Status.CONFIRMED
    assert [tx["nonce"] for tx in RemoteSigner.signed] == [settled.nonce]


def test_the_local_signer_reads_its_key_from_the_environment_and_never_shows_it(monkeypatch):
    monkeypatch.delenv("KIBO_ESCROW_PRIVATE_KEY", raising=False)
    with pytest.raises(SignerUnavailable, match="KIBO_ESCROW_PRIVATE_KEY is not set"):
        LocalKeySigner()
    monkeypatch.setenv("KIBO_ESCROW_PRIVATE_KEY", ESCROW_KEY)
    signer = LocalKeySigner()
    assert signer.address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert ESCROW_KEY[2:] not in repr(signer) and ESCROW_KEY[2:] not in str(vars(signer))


def test_a_signer_for_another_wallet_is_a_problem_the_worker_names(signer_from_settings):
    signer_from_settings.KIBO_ESCROW_ADDRESS = "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A"
    assert escrow_signer_problem() == (
        "the signer signs for 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266, but "
        "KIBO_ESCROW_ADDRESS is 0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A."
    )
