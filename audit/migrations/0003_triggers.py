from django.db import migrations

ORDER_AUDIT = """
CREATE FUNCTION log_order_changes() RETURNS trigger LANGUAGE plpgsql AS $$
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
            gen_random_uuid(), NEW.id, 'STATUS_CHANGED', NULL,
            jsonb_build_object('from', OLD.status, 'to', NEW.status),
            clock_timestamp()
        );
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER orders_audit
    AFTER INSERT OR UPDATE OF status ON orders
    FOR EACH ROW EXECUTE FUNCTION log_order_changes();
"""

LOGS_APPEND_ONLY = """
CREATE FUNCTION logs_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % is not allowed', TG_OP;
END;
$$;

CREATE TRIGGER logs_append_only
    BEFORE UPDATE OR DELETE ON logs
    FOR EACH ROW EXECUTE FUNCTION logs_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_initial"), ("orders", "0001_initial"), ("kibo", "0001_initial")]

    operations = [
        migrations.RunSQL(
            ORDER_AUDIT,
            "DROP TRIGGER orders_audit ON orders; DROP FUNCTION log_order_changes();",
        ),
        migrations.RunSQL(
            LOGS_APPEND_ONLY,
            "DROP TRIGGER logs_append_only ON logs; DROP FUNCTION logs_append_only();",
        ),
    ]
