"""A year of Kibo in PostgreSQL, made in SQL: a million orders and everything they leave.

Reproducible: every value derives from the seed (md5 of seed, row and column), never from
`random()`. Bulk-loaded with `INSERT … SELECT generate_series` in one transaction, with
triggers and foreign-key checks off (`session_replication_role = replica`): the rows are
written as the services and the audit trigger would have written them, so nothing is
lost by not running them. Sizes scale with `orders`, so the test suite runs it small.

What it makes, for `orders` = 1,000,000 (the other sizes scale with it):
- 50,000 users and 2,000 verified allies, half in Bolivia, 30 % in Mexico, 20 % in
  Argentina; one heavy user with 200 orders;
- quotes every 30 s for a week for each of the 9 pairs, the newest active;
- 995,000 finished orders over 12 months (85 % completed, 6 % refunded, 9 % expired
  unpaid), with their escrow accounts, deposits, payout and refund transfers,
  and about 4 audit rows each; 5,000 open orders of the last minutes (1,500 waiting for
  payment, 2,000 on the boards, 1,500 taken), one per user and one taken per ally;
- one penalty for every 50 expired orders an ally held, a few of them still running.
"""

from dataclasses import dataclass

from eth_utils import keccak, to_checksum_address

COUNTRIES = (("BO", "BOB"), ("MX", "MXN"), ("AR", "ARS"))
# A user's country from its number: 0-4 Bolivia, 5-7 Mexico, 8-9 Argentina (mod 10).
COUNTRY_SQL = "CASE WHEN mod({n}, 10) < 5 THEN 'BO' WHEN mod({n}, 10) < 8 THEN 'MX' ELSE 'AR' END"
FIAT_SQL = "CASE WHEN mod({n}, 10) < 5 THEN 'BOB' WHEN mod({n}, 10) < 8 THEN 'MXN' ELSE 'ARS' END"
RATES = {  # fiat per token, as the demo data has them
    ("USDT", "BOB"): 9.80,
    ("USDC", "BOB"): 9.78,
    ("ETH", "BOB"): 31500,
    ("USDT", "MXN"): 18.40,
    ("USDC", "MXN"): 18.38,
    ("ETH", "MXN"): 59000,
    ("USDT", "ARS"): 1450,
    ("USDC", "ARS"): 1448,
    ("ETH", "ARS"): 4650000,
}
HEAVY_USER_ORDERS = 200
BULK_TABLES = (
    "users",
    "quotes",
    "orders",
    "escrow_accounts",
    "deposits",
    "transfers",
    "logs",
    "ally_penalties",
)


@dataclass(frozen=True)
class Sizes:
    orders: int
    users: int
    allies: int
    open_orders: int
    quotes_per_pair: int

    @classmethod
    def for_orders(cls, orders: int) -> "Sizes":
        return cls(
            orders=orders,
            users=max(100, orders // 20),
            allies=max(20, orders // 500),
            open_orders=max(50, orders // 200),
            quotes_per_pair=max(10, min(20_160, orders // 50)),  # a week every 30 s at 1M
        )


def wallet(seed: int, kind: str, n: int) -> str:
    return to_checksum_address(keccak(text=f"{seed}:{kind}:{n}")[-20:])


def _rand(salt: str, n: str = "i") -> str:
    """SQL for a number in [0, 1) fixed by the seed, the row and the salt."""
    return f"bench_rand({n}, '{salt}')"


def _users(cursor, seed: int, sizes: Sizes) -> None:
    """Users 0..allies-1 are the allies; the rest pay QRs. Wallets are EIP-55, from Python."""
    total = sizes.allies + sizes.users
    with cursor.copy("COPY bench_wallets (n, wallet) FROM STDIN") as copy:
        for n in range(total):
            copy.write_row((n, wallet(seed, "user", n)))
    country = COUNTRY_SQL.format(n="w.n")
    cursor.execute(
        f"""
        INSERT INTO users (id, password, is_superuser, wallet_address, role, country, verified,
                           reputation, successful_orders, is_staff, is_active, created_at)
        SELECT bench_uuid('user', w.n), '!', false, w.wallet,
               CASE WHEN w.n < %(allies)s THEN 'ally' ELSE 'user' END, {country},
               w.n < %(allies)s, round((4 + {_rand("reputation", "w.n")})::numeric, 2), 0,
               false, true, now() - interval '400 days' * {_rand("joined", "w.n")}
        FROM bench_wallets w
        """,
        {"allies": sizes.allies},
    )
    # Each ally was approved (by itself here: the dataset has no staff) for its country.
    cursor.execute(
        """
        INSERT INTO ally_applications (id, user_id, country, display_name, bank, status,
                                       created_at, decided_at, decided_by_id)
        SELECT bench_uuid('application', w.n), u.id, u.country, 'Aliado ' || w.n, 'Banco',
               'APPROVED', u.created_at, u.created_at, u.id
        FROM bench_wallets w JOIN users u ON u.id = bench_uuid('user', w.n)
        WHERE w.n < %(allies)s
        """,
        {"allies": sizes.allies},
    )


def _quotes(cursor, sizes: Sizes) -> None:
    values = ", ".join(f"('{t}', '{f}', {r})" for (t, f), r in RATES.items())
    cursor.execute(
        f"""
        INSERT INTO quotes (id, token, fiat, rate, source, timestamp, is_active)
        SELECT bench_uuid('quote-' || p.token || p.fiat, s.k),
               p.token, p.fiat, round((p.rate * (1 + 0.01 * sin(s.k / 97.0)))::numeric, 8),
               'binance_p2p', now() - interval '30 seconds' * s.k, s.k = 0
        FROM (VALUES {values}) AS p (token, fiat, rate)
        CROSS JOIN generate_series(0, %(n)s - 1) AS s (k)
        """,
        {"n": sizes.quotes_per_pair},
    )


def _order_plan(cursor, sizes: Sizes) -> None:
    """One row per order with everything its rows are made of (a temporary table)."""
    finished = sizes.orders - sizes.open_orders
    heavy_every = max(1, finished // HEAVY_USER_ORDERS)
    first_open_user = sizes.allies + sizes.users // 5  # one open order each
    cursor.execute(
        f"""
        CREATE TEMP TABLE bench_plan AS
        SELECT i,
               bench_uuid('order', i) AS id,
               CASE
                 WHEN i >= %(finished)s THEN %(first_open_user)s + (i - %(finished)s)
                 WHEN mod(i, %(heavy_every)s) = 0 THEN %(allies)s   -- the heavy user
                 ELSE %(allies)s + 1 + mod(i * 7919, %(users)s - 1)
               END AS user_n,
               CASE
                 WHEN i < %(finished)s * 0.85 THEN 'COMPLETED'
                 WHEN i < %(finished)s * 0.91 THEN 'REFUNDED'
                 WHEN i < %(finished)s THEN 'EXPIRED'
                 WHEN i < %(finished)s + %(open)s * 0.3 THEN 'PENDING_PAYMENT'
                 WHEN i < %(finished)s + %(open)s * 0.7 THEN 'AVAILABLE'
                 ELSE 'TAKEN'
               END AS status,
               CASE WHEN {_rand("token")} < 0.6 THEN 'USDT'
                    WHEN {_rand("token")} < 0.9 THEN 'USDC' ELSE 'ETH' END AS token,
               CASE WHEN {_rand("network")} < 0.5 THEN 'mantle' ELSE 'base' END AS network,
               CASE WHEN i >= %(finished)s
                    THEN now() - interval '1 second' * (%(orders)s - i) * 0.02
                    ELSE now() - interval '365 days' * {_rand("age")} - interval '1 hour'
               END AS created_at
        FROM generate_series(0::bigint, %(orders)s - 1) AS i
        """,
        {
            "finished": finished,
            "first_open_user": first_open_user,
            "heavy_every": heavy_every,
            "allies": sizes.allies,
            "users": sizes.users,
            "orders": sizes.orders,
            "open": sizes.open_orders,
        },
    )
    # Statuses follow the row number and dates a hash of it, so every month has the same mix.
    fiat = FIAT_SQL.format(n="p.user_n")
    rates = " ".join(f"WHEN '{t}{f}' THEN {r}" for (t, f), r in RATES.items())
    cursor.execute(
        f"""
        ALTER TABLE bench_plan ADD COLUMN fiat text, ADD COLUMN rate numeric,
            ADD COLUMN amount_fiat numeric, ADD COLUMN ally_n int;
        UPDATE bench_plan p SET
            fiat = {fiat},
            rate = CASE p.token || {fiat} {rates} END,
            amount_fiat = round((CASE {fiat} WHEN 'BOB' THEN 10 WHEN 'MXN' THEN 25 ELSE 1500 END
                                 * (1 + 60 * {_rand("amount", "p.i")} ^ 3))::numeric, 2),
            ally_n = CASE WHEN p.status = 'COMPLETED'
                          THEN mod(p.i * 13, %(allies)s / 10) * 10 + mod(p.user_n, 10) END;
        """,
        {"allies": sizes.allies},
    )
    # An ally is of the country its number says (mod 10), like a user: a taken order goes
    # to the next free ally of its user's country, so no ally holds two.
    cursor.execute(
        """
        UPDATE bench_plan p SET ally_n = t.k * 10 + t.r
        FROM (SELECT i, mod(user_n, 10) AS r,
                     row_number() OVER (PARTITION BY mod(user_n, 10) ORDER BY i) - 1 AS k
              FROM bench_plan WHERE status = 'TAKEN') t
        WHERE p.i = t.i
        """
    )


def _orders(cursor) -> None:
    cursor.execute(
        """
        INSERT INTO orders (id, qr_data, amount_fiat, fiat_currency, amount_crypto, fee_crypto,
                            crypto_token, network, exchange_rate, status, deposit_tx_hash,
                            release_tx_hash, proof_file, proof_sha256, expires_at, created_at,
                            updated_at, paid_at, taken_at, completed_at, ally_id, quote_id,
                            user_id)
        SELECT p.id,
               '000201010212' || md5(p.id::text) || '6304ABCD',
               p.amount_fiat, p.fiat, c.amount, round(c.amount * 0.01, 6), p.token, p.network,
               p.rate, p.status,
               CASE WHEN p.status IN ('COMPLETED','REFUNDED','AVAILABLE','TAKEN')
                    THEN bench_hash('deposit', p.i) END,
               CASE WHEN p.status = 'COMPLETED' THEN bench_hash('release', p.i) END,
               CASE WHEN p.status = 'COMPLETED' THEN 'proofs/' || md5(p.id::text) || '.png' END,
               CASE WHEN p.status = 'COMPLETED' THEN md5(p.id::text) || md5(p.i::text) END,
               CASE p.status
                 WHEN 'PENDING_PAYMENT' THEN p.created_at + interval '3 minutes'
                 WHEN 'AVAILABLE' THEN p.created_at + interval '40 seconds' + interval '5 minutes'
                 WHEN 'TAKEN' THEN p.created_at + interval '90 seconds' + interval '5 minutes'
               END,
               p.created_at,
               p.created_at + interval '4 minutes',
               CASE WHEN p.status <> 'PENDING_PAYMENT' AND p.status <> 'EXPIRED'
                    THEN p.created_at + interval '40 seconds' END,
               CASE WHEN p.status IN ('COMPLETED', 'TAKEN')
                    THEN p.created_at + interval '90 seconds' END,
               CASE WHEN p.status = 'COMPLETED'
                    THEN p.created_at + interval '90 seconds'
                         + interval '1 second' * (60 + bench_rand(p.i, 'took') * 200) END,
               bench_uuid('user', p.ally_n),
               bench_uuid('quote-' || p.token || p.fiat, 0),
               bench_uuid('user', p.user_n)
        FROM bench_plan p,
             LATERAL (SELECT round(p.amount_fiat / p.rate * 1.005,
                                   CASE p.token WHEN 'ETH' THEN 8 ELSE 6 END) AS amount) c
        """
    )


def _money(cursor) -> None:
    """Escrow accounts, deposits and transfers (payouts, refunds) of every paid order."""
    cursor.execute(
        """
        INSERT INTO escrow_accounts (id, amount, token, network, deposit_tx_hash, status,
                                     locked_at, released_at, refunded_at, order_id)
        SELECT bench_uuid('escrow', p.i), o.amount_crypto, o.crypto_token, o.network,
               o.deposit_tx_hash,
               CASE o.status WHEN 'COMPLETED' THEN 'RELEASED' WHEN 'REFUNDED' THEN 'REFUNDED'
                             ELSE 'LOCKED' END,
               o.paid_at,
               CASE WHEN o.status = 'COMPLETED' THEN o.completed_at + interval '20 seconds' END,
               CASE WHEN o.status = 'REFUNDED' THEN o.created_at + interval '7 minutes' END,
               o.id
        FROM bench_plan p JOIN orders o ON o.id = p.id
        WHERE o.deposit_tx_hash IS NOT NULL;

        INSERT INTO deposits (id, network, tx_hash, log_index, block_number, block_hash, token,
                              token_address, sender, amount_base, credited_base, kept_base,
                              outcome, reason, created_at, order_id)
        SELECT bench_uuid('deposit', p.i), o.network, o.deposit_tx_hash, 0, 1000000 + p.i,
               bench_hash('block', p.i), o.crypto_token, NULL, u.wallet_address,
               o.amount_crypto * 1000000, o.amount_crypto * 1000000, 0, 'CREDITED', '',
               o.paid_at, o.id
        FROM bench_plan p JOIN orders o ON o.id = p.id JOIN users u ON u.id = o.user_id
        WHERE o.deposit_tx_hash IS NOT NULL;

        INSERT INTO transfers (id, purpose, network, token, token_address, from_address,
                               recipient, amount_base, status, nonce, gas, mined_tx_hash,
                               fee_paid_base, attempts, last_error, created_at, updated_at,
                               confirmed_at, deposit_id, order_id, shortfall_base,
                               shortfall_coin)
        SELECT bench_uuid('transfer', p.i),
               CASE o.status WHEN 'COMPLETED' THEN 'RELEASE' ELSE 'REFUND' END,
               o.network, o.crypto_token, NULL, %(escrow)s,
               CASE o.status WHEN 'COMPLETED' THEN a.wallet_address ELSE u.wallet_address END,
               CASE o.status WHEN 'COMPLETED' THEN (o.amount_crypto - o.fee_crypto) * 1000000
                             ELSE o.amount_crypto * 1000000 END,
               'CONFIRMED',
               row_number() OVER (PARTITION BY o.network ORDER BY p.i) - 1,
               65000,
               COALESCE(o.release_tx_hash, bench_hash('refund', p.i)),
               21000000000::numeric, 1, '', o.updated_at, o.updated_at, o.updated_at, NULL, o.id,
               NULL, ''
        FROM bench_plan p JOIN orders o ON o.id = p.id JOIN users u ON u.id = o.user_id
        LEFT JOIN users a ON a.id = o.ally_id
        WHERE o.status IN ('COMPLETED', 'REFUNDED');
        """,
        {"escrow": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"},
    )


def _logs(cursor) -> None:
    """What the audit trigger and the services wrote: about four rows per order."""
    cursor.execute(
        """
        INSERT INTO logs (id, order_id, action, actor_wallet, metadata, created_at)
        SELECT bench_uuid('log-' || e.action || e.k, p.i), p.id, e.action,
               CASE WHEN e.by_ally THEN a.wallet_address ELSE u.wallet_address END,
               e.metadata, e.at
        FROM bench_plan p
        JOIN orders o ON o.id = p.id
        JOIN users u ON u.id = o.user_id
        LEFT JOIN users a ON a.id = o.ally_id
        CROSS JOIN LATERAL (VALUES
            (0, 'ORDER_CREATED', false, true, o.created_at,
             jsonb_build_object('status', 'PENDING_PAYMENT', 'amount_fiat',
                                o.amount_fiat::text, 'fiat_currency', o.fiat_currency)),
            (1, 'STATUS_CHANGED', false, o.paid_at IS NOT NULL, o.paid_at,
             jsonb_build_object('old_status', 'PENDING_PAYMENT', 'new_status', 'AVAILABLE')),
            (2, 'STATUS_CHANGED', true, o.taken_at IS NOT NULL, o.taken_at,
             jsonb_build_object('old_status', 'AVAILABLE', 'new_status', 'TAKEN')),
            (3, 'STATUS_CHANGED', true, o.status = 'COMPLETED', o.completed_at,
             jsonb_build_object('old_status', 'TAKEN', 'new_status', 'COMPLETED')),
            (4, 'STATUS_CHANGED', false, o.status IN ('EXPIRED', 'REFUNDED'),
             o.created_at + interval '6 minutes',
             jsonb_build_object('old_status', CASE WHEN o.paid_at IS NULL
                                THEN 'PENDING_PAYMENT' ELSE 'AVAILABLE' END,
                                'new_status', 'EXPIRED')),
            (5, 'REFUND_PROCESSED', false, o.status = 'REFUNDED',
             o.created_at + interval '7 minutes', jsonb_build_object('to', u.wallet_address))
        ) AS e (k, action, by_ally, happened, at, metadata)
        WHERE e.happened
        """
    )


def _penalties(cursor, sizes: Sizes) -> None:
    cursor.execute(
        """
        INSERT INTO ally_penalties (id, reason, penalty_minutes, penalty_until, created_at,
                                    ally_id, order_id)
        SELECT bench_uuid('penalty', k), 'TIMEOUT', 30,
               at + interval '30 minutes', at, bench_uuid('user', mod(k, %(allies)s)), NULL
        FROM generate_series(0, %(n)s - 1) AS k,
             LATERAL (SELECT CASE WHEN k < 5 THEN now() - interval '5 minutes'
                                  ELSE now() - interval '365 days' * bench_rand(k, 'penalty')
                             END AS at) t
        """,
        {"n": max(10, sizes.orders // 50 // 20), "allies": sizes.allies},
    )


FUNCTIONS = """
CREATE OR REPLACE FUNCTION bench_rand(n bigint, salt text) RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$
  SELECT (('x' || substr(md5(current_setting('bench.seed') || ':' || salt || ':' || n), 1, 8))
          ::bit(32)::int & 2147483647) / 2147483648.0
$$;
CREATE OR REPLACE FUNCTION bench_uuid(kind text, n bigint) RETURNS uuid
LANGUAGE sql IMMUTABLE AS $$
  SELECT md5(current_setting('bench.seed') || ':' || kind || ':' || n)::uuid
$$;
CREATE OR REPLACE FUNCTION bench_hash(kind text, n bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT '0x' || md5(current_setting('bench.seed') || ':' || kind || ':' || n)
              || md5(current_setting('bench.seed') || ':' || n || ':' || kind)
$$;
"""


def _audit_months(cursor, months: int) -> None:
    """The audit log's monthly partitions for the months the data spans (migrations make
    only this month's and the next ones)."""
    cursor.execute(
        """
        SELECT logs_partition_create(month::date)
        FROM generate_series(date_trunc('month', now() - %s * interval '1 month'),
                             now(), interval '1 month') AS month
        """,
        [months],
    )


def _audit_history(cursor, rows: int, months: int) -> None:
    """Older audit entries about no order (refused quotes, config edits, blocked attempts,
    applications), spread evenly over the last `months` months: years of Kibo's log."""
    cursor.execute(
        """
        INSERT INTO logs (id, order_id, action, actor_wallet, metadata, created_at)
        SELECT bench_uuid('history', i), NULL,
               (ARRAY['QUOTE_REJECTED', 'CONFIG_CHANGED', 'BLOCKED_ATTEMPT', 'ALLY_APPLIED'])
                   [1 + mod(i, 4)],
               NULL, jsonb_build_object('n', i),
               now() - interval '1 hour' - %(months)s * interval '1 month' * (i::float8 / %(rows)s)
        FROM generate_series(1::bigint, %(rows)s) AS i
        """,
        {"rows": rows, "months": months},
    )


def fill(
    connection,
    *,
    orders: int,
    seed: int = 1,
    audit_rows: int = 0,
    audit_months: int = 13,
    progress=print,
) -> Sizes:
    """Fill an empty, migrated database. Returns the sizes used. With `audit_rows`, older
    audit entries are added until the log holds that many, over `audit_months` months."""
    import time

    sizes = Sizes.for_orders(orders)
    history = max(0, audit_rows - 4 * orders)  # the orders' own come to about 3.8 each
    steps = [
        ("users and allies", lambda c: _users(c, seed, sizes)),
        ("quotes", lambda c: _quotes(c, sizes)),
        ("order plan", lambda c: _order_plan(c, sizes)),
        ("orders", _orders),
        ("escrow, deposits, transfers, refunds", _money),
        ("audit log partitions", lambda c: _audit_months(c, max(13, audit_months))),
        ("audit log", _logs),
        *(
            [("older audit history", lambda c: _audit_history(c, history, audit_months))]
            if history
            else []
        ),
        ("penalties", lambda c: _penalties(c, sizes)),
    ]
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('bench.seed', %s, false)", [str(seed)])
        cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute(FUNCTIONS)
        cursor.execute("CREATE TEMP TABLE bench_wallets (n int PRIMARY KEY, wallet text)")
        cursor.execute("SET session_replication_role = replica")  # no triggers, no FK checks
        # Indexes that enforce nothing are built once at the end: much faster than kept up
        # row by row. Unique ones stay, so the data is checked as the services would be.
        cursor.execute(
            """
            SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
            FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
            WHERE t.relname = ANY(%s) AND NOT i.indisunique
            """,
            [list(BULK_TABLES)],
        )
        deferred = cursor.fetchall()
        for name, _ in deferred:
            cursor.execute(f"DROP INDEX {name}")
        for label, step in steps:
            start = time.perf_counter()
            step(cursor)
            progress(f"  {label:<40} {time.perf_counter() - start:6.1f} s")
        start = time.perf_counter()
        for _, definition in deferred:
            # a partitioned table's index is defined ON ONLY the parent; built again, it
            # must reach every partition
            cursor.execute(definition.replace(" ON ONLY ", " ON "))
        progress(f"  {'indexes':<40} {time.perf_counter() - start:6.1f} s")
        cursor.execute("SET session_replication_role = DEFAULT")
        cursor.execute("DROP TABLE bench_plan, bench_wallets")
        cursor.execute(
            "DROP FUNCTION bench_rand(bigint, text), bench_uuid(text, bigint), "
            "bench_hash(text, bigint)"
        )
    return sizes


def add_due_orders(connection, *, count: int, seed: int = 1) -> int:
    """`count` paid orders on the boards whose timer ran out a moment ago, each of a user
    with no other open order, with their escrow: what the expiry sweep meets after an
    outage. Returns how many were added."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('bench.seed', %s, false)", [str(seed)])
        cursor.execute(FUNCTIONS)
        cursor.execute(
            """
            CREATE TEMP TABLE bench_due AS
            SELECT row_number() OVER (ORDER BY u.id) AS k, u.id AS user_id, u.country
            FROM users u
            WHERE u.role = 'user'
              AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id
                              AND o.status IN ('PENDING_PAYMENT', 'AVAILABLE', 'TAKEN'))
            LIMIT %s
            """,
            [count],
        )
        cursor.execute(
            """
            INSERT INTO orders (id, qr_data, amount_fiat, fiat_currency, amount_crypto,
                                fee_crypto, crypto_token, network, exchange_rate, status,
                                deposit_tx_hash, expires_at, created_at, updated_at, paid_at,
                                quote_id, user_id)
            SELECT bench_uuid('due', d.k), '000201010212' || md5(d.k::text) || '6304ABCD',
                   100, f.fiat, 10.5, 0.105, 'USDT', 'base', 9.8, 'AVAILABLE',
                   bench_hash('due-deposit', d.k), now() - interval '1 second',
                   now() - interval '6 minutes', now() - interval '5 minutes',
                   now() - interval '5 minutes',
                   (SELECT id FROM quotes WHERE token = 'USDT' AND fiat = f.fiat
                    AND is_active), d.user_id
            FROM bench_due d,
                 LATERAL (SELECT CASE d.country WHEN 'BO' THEN 'BOB' WHEN 'MX' THEN 'MXN'
                                 ELSE 'ARS' END AS fiat) f;
            INSERT INTO escrow_accounts (id, amount, token, network, deposit_tx_hash, status,
                                         locked_at, order_id)
            SELECT bench_uuid('due-escrow', d.k), 10.5, 'USDT', 'base',
                   bench_hash('due-deposit', d.k), 'LOCKED', now() - interval '5 minutes',
                   bench_uuid('due', d.k)
            FROM bench_due d;
            DROP TABLE bench_due;
            """
        )
        cursor.execute(
            "SELECT count(*) FROM orders WHERE status = 'AVAILABLE' AND expires_at < now()"
        )
        due = cursor.fetchone()[0]
        cursor.execute(
            "DROP FUNCTION bench_rand(bigint, text), bench_uuid(text, bigint), "
            "bench_hash(text, bigint)"
        )
    return due
