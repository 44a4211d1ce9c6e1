"""STATUS_CHANGED entries written once per UPDATE statement, from its transition tables.

The same entries as before (0004), but an UPDATE that moves many orders at once (the expiry
sweep's batch of a thousand) writes them with one INSERT instead of running the trigger
function, its user lookup and its INSERT once per row: half the cost of such an UPDATE.
ORDER_CREATED stays a row trigger, with a function of its own. PostgreSQL allows transition tables only on a trigger of
one event and no column list, so this one fires on every UPDATE and keeps the rows whose
status changed.
"""

from importlib import import_module

from django.db import migrations

FORWARD = """
DROP TRIGGER orders_audit ON orders;
DROP FUNCTION log_order_changes();

CREATE FUNCTION log_order_created() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
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
    RETURN NEW;
END;
$$;

CREATE TRIGGER orders_audit
    AFTER INSERT ON orders
    FOR EACH ROW EXECUTE FUNCTION log_order_created();

CREATE FUNCTION log_order_status_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO logs (id, order_id, action, actor_wallet, metadata, created_at)
    SELECT gen_random_uuid(), new_row.id, 'STATUS_CHANGED', actor.wallet_address,
           jsonb_build_object(
               'old_status', old_row.status,
               'new_status', new_row.status,
               'timestamp', clock_timestamp()
           ),
           clock_timestamp()
    FROM new_rows AS new_row
    JOIN old_rows AS old_row ON old_row.id = new_row.id
    LEFT JOIN users AS actor ON actor.id = COALESCE(new_row.ally_id, new_row.user_id)
    WHERE new_row.status IS DISTINCT FROM old_row.status;
    RETURN NULL;
END;
$$;

CREATE TRIGGER orders_status_audit
    AFTER UPDATE ON orders
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_order_status_changes();
"""

BACKWARD = (
    """
DROP TRIGGER orders_status_audit ON orders;
DROP FUNCTION log_order_status_changes();
DROP TRIGGER orders_audit ON orders;
DROP FUNCTION log_order_created();
"""
    + import_module("audit.migrations.0004_status_changed_as_the_seed").FUNCTION
    + """
CREATE TRIGGER orders_audit
    AFTER INSERT OR UPDATE OF status ON orders
    FOR EACH ROW EXECUTE FUNCTION log_order_changes();
"""
)


class Migration(migrations.Migration):
    dependencies = [("audit", "0006_drop_indexes_the_composites_cover")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
