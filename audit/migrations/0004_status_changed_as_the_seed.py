"""STATUS_CHANGED entries as the seed writes them: metadata old_status, new_status and
timestamp, and the acting wallet (the order's ally when it has one, else its user).
Entries already written keep their shape: the log is append-only."""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION log_order_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO logs (id, order_id, action, actor_wallet, metadata, created_at)
        VALUES (
            gen_random_uuid(), NEW.id, 'ORDER_CREATED',
            (SELECT wallet_address FROM users WHERE id = NEW.user_id),
            jsonb_build_object(
                'status', NEW.status,
                'amount_fiat', NEW.amount_fiat::text,
                'fiat_currency', NEW.fiat_currency,
                'amount_crypto', NEW.amount_crypto::text,
                'fee_crypto', NEW.fee_crypto::text,
                'crypto_token', NEW.crypto_token,
                'network', NEW.network,
                'exchange_rate', NEW.exchange_rate::text,
                'quote_id', NEW.quote_id
            ),
            clock_timestamp()
        );
    ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
        INSERT INTO logs (id, order_id, action, actor_wallet, metadata, created_at)
        VALUES (
            gen_random_uuid(), NEW.id, 'STATUS_CHANGED',
            (SELECT wallet_address FROM users WHERE id = COALESCE(NEW.ally_id, NEW.user_id)),
            jsonb_build_object(
                'old_status', OLD.status,
                'new_status', NEW.status,
                'timestamp', clock_timestamp()
            ),
            clock_timestamp()
        );
    END IF;
    RETURN NEW;
END;
$$;
"""

PREVIOUS = FUNCTION.replace(
    "(SELECT wallet_address FROM users WHERE id = COALESCE(NEW.ally_id, NEW.user_id)),",
    "NULL,",
).replace(
    """jsonb_build_object(
                'old_status', OLD.status,
                'new_status', NEW.status,
                'timestamp', clock_timestamp()
            ),""",
    "jsonb_build_object('from', OLD.status, 'to', NEW.status),",
)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_triggers")]

    operations = [migrations.RunSQL(FUNCTION, PREVIOUS)]
