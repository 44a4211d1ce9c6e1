"""Row locks, and the one order every transaction takes them in.

    1. users (kibo.locks): several at once in primary-key order
    2. orders (orders.locks)
    3. an order's disputes, late receipts (orders.locks) and ally penalties (allies.locks)
    4. its transfers out of escrow, then its escrow account (escrow.locks)
    5. the sending wallet's nonce cursor, while a transfer is signed (escrow.locks)

Rows of other tables (an ally application, a SYSTEM_CONFIG key, a wallet's block) come after
the user they belong to. An ally's presence (allies.locks) comes after the orders whose
expiry counts against it, and is otherwise locked alone. Taken in this order, two
transactions never wait on each other.

One path goes the other way, and knows it: settling a mined transfer holds the transfer,
then (through escrow.outcomes) its order. So whoever holds an order and wants its payout
takes the payout without waiting, and reads "someone holds it" as "too late"
(orders.disputes). A helper that needs its caller's locks is @in_callers_transaction
(kibo.db).
"""

from django_otp.plugins.otp_totp.models import TOTPDevice

from kibo.models import BlockedWallet, SystemConfig, User


def lock_user(user_id) -> User:
    """The user, locked until the transaction ends."""
    return User.objects.select_for_update().get(pk=user_id)


def lock_user_if_free(user_id) -> User | None:
    """The user, locked, unless another transaction holds it (None): for sweeps, which
    leave a busy row to their next run."""
    return User.objects.select_for_update(skip_locked=True).filter(pk=user_id).first()


def lock_users(*user_ids) -> None:
    """Lock several users' rows, in primary-key order (None ids are ignored)."""
    ids = [user_id for user_id in user_ids if user_id is not None]
    list(User.objects.select_for_update().filter(pk__in=ids).order_by("pk").values("pk"))


def lock_free_users(user_ids) -> set:
    """Of these users, lock those no other transaction holds (in primary-key order); their
    ids. For sweeps, which leave a busy row to the next run."""
    return set(
        User.objects.select_for_update(skip_locked=True)
        .filter(pk__in=user_ids)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def lock_user_of_wallet(wallet: str) -> User | None:
    return User.objects.select_for_update().filter(wallet_address=wallet).first()


def lock_block(block_id) -> BlockedWallet:
    return BlockedWallet.objects.select_for_update().get(pk=block_id)


def lock_config(key: str) -> SystemConfig:
    """A SYSTEM_CONFIG row, created empty if it is new, locked for its change."""
    config, _created = SystemConfig.objects.select_for_update().get_or_create(key=key)
    return config


def lock_staff_authenticator(user_id) -> TOTPDevice | None:
    """The staff member's authenticator (one each: `manage.py staff_totp`), locked while a
    code is checked against it, so a code is accepted once."""
    return TOTPDevice.objects.select_for_update().filter(user_id=user_id, confirmed=True).first()
