from kibo.models import BlockedWallet


def is_wallet_blocked(*, wallet: str) -> bool:
    """Whether staff block this (EIP-55) wallet now; one indexed lookup."""
    return BlockedWallet.objects.filter(wallet_address=wallet, unblocked_at__isnull=True).exists()
