"""All settings, read from environment variables (docs/reference/settings.md lists them, from the doc= texts)."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import socket
from datetime import timedelta
from pathlib import Path

import dj_database_url

from .env import PROBLEMS, Problem, env_bool, env_int, env_list, env_str
from .files import atomic_write

# Everything this product writes under DATA_DIR (database, workbooks, archives, logs, keys) is for its own user.
os.umask(0o077)

BASE_DIR = Path(__file__).resolve().parent.parent

DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / "data"),
                        doc=("the product's folder: database (SQLite), workbooks, archives, audit log mirror, "
                            "logs, generated keys; made mode 700"),
                        shown_default="./data beside manage.py")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)
# Posts, keys and the audit log live here: other users of the machine get no way in, whatever older files' modes.
DATA_DIR.chmod(0o700)
ANNOTATIONS_DIR = DATA_DIR / "annotations"
ARCHIVES_DIR = DATA_DIR / "archives"
AUDIT_LOG_FILE = DATA_DIR / "admin_audit.log"
DEMO_CORPUS = BASE_DIR / "data" / "demo" / "demo_posts.csv"


def _secret_key() -> str:
    """Use SECRET_KEY, else one generated once and kept (mode 600, written atomically) in DATA_DIR."""
    given = env_str("SECRET_KEY", "",
                    doc="Django's signing key",
                    shown_default="generated once into DATA_DIR/secret_key (mode 600)")
    if given:
        return given
    path = DATA_DIR / "secret_key"
    if not path.exists():
        atomic_write(path, lambda temp: temp.write_text(secrets.token_urlsafe(50)))  # mkstemp files are 0600
    key = path.read_text().strip()
    if len(key) < 32:
        PROBLEMS.append(Problem("SECRET_KEY", str(path), "the secret key file is empty or too short; delete it to "
                                "have a new one made (logged-in sessions end)"))
        return secrets.token_urlsafe(50)  # this process only: `check` and every start report the problem
    return key


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False,
                 doc="Django's debug mode; never in production")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"],
                         doc="host names the web server answers to")
PORT = env_int("PORT", 8000, minimum=1, maximum=65535,
               doc="web server port (run.sh picks the next free one if 8000 is busy and PORT is unset)")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [],
                                doc="behind TLS: the site's origin, e.g. https://your.host")

SQLITE_OPTIONS = {
    # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock at BEGIN so
    # concurrent writers queue on the busy timeout instead of failing with "database is locked".
    # A WAL grows as large as the largest write and stays so while any process has the database open:
    # journal_size_limit cuts it back to 64 MiB whenever a checkpoint resets it (annotation_site.db.checkpoint_wal
    # empties it after large writes).
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA journal_size_limit=67108864;",
    "transaction_mode": "IMMEDIATE",
    "timeout": 30,
}


# PostgreSQL connections per process: web, commands and agents; a fleet worker process takes WORKER_DB_POOL_SIZE.
DB_POOL_MAX_SIZE = env_int("DB_POOL_MAX_SIZE", 10, minimum=1, maximum=100,
                           doc="PostgreSQL: connections per process (web, agent, commands, beat)")
WORKER_DB_POOL_SIZE = env_int("WORKER_DB_POOL_SIZE", 1, minimum=1, maximum=100,
                              doc="PostgreSQL: connections per fleet worker process, shared by its threads")
# PgBouncer in transaction mode hands each transaction any server connection: no server-side cursors. Read whatever
# the database, so that the settings reference lists it wherever it is made.
DATABASE_BEHIND_PGBOUNCER = env_bool("DATABASE_BEHIND_PGBOUNCER", False,
                                     doc=("PostgreSQL behind PgBouncer in transaction mode: no server-side "
                                         "cursors"))


def _database() -> dict:
    default_url = f"sqlite:///{DATA_DIR / 'db.sqlite3'}"
    url = env_str("DATABASE_URL", default_url,
                  doc="the database, e.g. postgres://user@host:5432/name for production",
                  shown_default="SQLite file db.sqlite3 in DATA_DIR (WAL mode)")
    try:
        config = dj_database_url.parse(url, conn_max_age=60)
    except ValueError as exc:
        PROBLEMS.append(Problem("DATABASE_URL", url, f"not a database URL: {exc}"))
        config = dj_database_url.parse(default_url)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["OPTIONS"] = dict(SQLITE_OPTIONS)
        # A file, not memory, so that worker processes started by tests see the test database.
        config["TEST"] = {"NAME": str(DATA_DIR / "test_db.sqlite3")}
    elif config["ENGINE"] == "django.db.backends.postgresql":
        # A worker process runs several task threads plus its heartbeat and flusher: a connection each would
        # exhaust PostgreSQL's max_connections at 30 workers. Each process shares a bounded pool instead (a thread
        # holds a connection only between its queries, never across an LLM call). A pool cannot be combined with
        # persistent connections.
        config["CONN_MAX_AGE"] = 0
        config["DISABLE_SERVER_SIDE_CURSORS"] = DATABASE_BEHIND_PGBOUNCER
        config["OPTIONS"] = {**config.get("OPTIONS", {}), "pool": {
            "min_size": 0, "max_size": DB_POOL_MAX_SIZE, "timeout": 60, "max_idle": 60}}
    return config


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0",
                    doc=("Redis for queues, heartbeats, counters and locks; run.sh uses it if set (it must "
                        "answer), else 127.0.0.1:6379 if it answers, else a private redis-server under "
                        "DATA_DIR/redis"))
INSTALL_ID_FORMAT = re.compile(r"[a-z0-9][a-z0-9-]{3,31}")


def _install_id() -> str:
    """Which install this is: INSTALL_ID (every host of one install sets the same), else an id made once and kept in
    DATA_DIR. Every Redis key of the install, Celery's own included, lives under it, so two installs may share one
    Redis server and database number without meeting."""
    given = env_str("INSTALL_ID", "",
                    doc=("prefix of every Redis key of the install (annot:INSTALL_ID:), so two installs can "
                        "share one Redis; every host of one install sets the same value"),
                    shown_default="made once into DATA_DIR/install_id")
    if given:
        if INSTALL_ID_FORMAT.fullmatch(given):
            return given
        PROBLEMS.append(Problem("INSTALL_ID", given, "expected 4-32 lower-case letters, digits or '-', starting with a "
                                "letter or digit"))
    path = DATA_DIR / "install_id"
    if not path.exists():
        atomic_write(path, lambda temp: temp.write_text(secrets.token_hex(6) + "\n"))
    kept = path.read_text().strip()
    if not INSTALL_ID_FORMAT.fullmatch(kept):
        PROBLEMS.append(Problem("INSTALL_ID", str(path), "the install id file is damaged; set INSTALL_ID to the id "
                                "this install used (the prefix of its Redis keys) or delete the file to start afresh"))
    return kept


INSTALL_ID = _install_id()
# Every Redis key of this install starts with this (workers_app.engine.keys.redis_key; kombu's global_keyprefix).
REDIS_KEY_PREFIX = f"annot:{INSTALL_ID}:"

INSTALLED_APPS = [
    # Django's admin on our site class: every list filters only by what its page offers (annotation_site.admin_site).
    "annotation_site.admin_site.ConsoleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_results",
    "django_celery_beat",
    "axes",
    "annotation_site",
    "audit",
    "admin_ops",
    "workers_app",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "api",
    "workspace",
]

MIDDLEWARE = [
    "annotation_site.request_limits.RequestSizeLimit",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "audit.middleware.AuditRefusals",
    "annotation_site.security_headers.SecurityHeaders",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

# Every page's sources (annotation_site/security_headers.py): this site only, no inline script or style, never in a
# frame. Swagger UI's icons are data: images.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
                           "form-action 'self'; frame-ancestors 'none'")
# Behind TLS (docs/guides/security.md, "Deploying behind TLS"): cookies only over HTTPS, HSTS, and the proxy's word on the scheme.
SECURE_COOKIES = env_bool("SECURE_COOKIES", False,
                          doc="behind TLS: session, CSRF and messages cookies over HTTPS only")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_COOKIES  # the messages cookie follows the session's
SECURE_HSTS_SECONDS = env_int("HSTS_SECONDS", 0, minimum=0, maximum=2 * 365 * 86_400,
                              doc=("behind TLS: send Strict-Transport-Security: max-age=N on HTTPS answers "
                                  "(e.g. 31536000); check warns if set without SECURE_COOKIES"))
if env_bool("BEHIND_TLS_PROXY", False,
            doc=("trust the proxy's X-Forwarded-Proto: https (only behind a proxy that sets it and drops a "
                "client's)")):
    # Only behind a proxy that sets this header itself (and drops a client's): otherwise anyone could claim HTTPS.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Login throttling (django-axes): 5 wrong passwords for one username from one address lock it for 15 minutes.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1,
                             doc=("wrong passwords per username and client address before that pair is locked "
                                 "(django-axes)"))
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1,
                                              doc="how long a locked username and address stay locked"))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Not its start-up banner in the output of every management command; lockouts are audited and logged regardless.
AXES_VERBOSE = False

# Refused requests (401, 403, a refused lookup) are audited once per actor, client and period; the rest of the
# period counts on that row (audit/refusals.py), so a flood of them cannot flood the append-only log.
AUDIT_REFUSAL_PERIOD_SECONDS = env_int("AUDIT_REFUSAL_PERIOD_SECONDS", 600, minimum=1, maximum=86_400,
                                       doc=("refused requests of one actor and client address within this "
                                           "period are one audit row with a count"))

ROOT_URLCONF = "annotation_site.urls"
# Where a login goes when its next= is missing or refused (another host, a script): the landing page, which leads
# to the dashboard or the admin, never Django's default /accounts/profile/ (no such page here).
LOGIN_REDIRECT_URL = "home"
WSGI_APPLICATION = "annotation_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC",
                    doc="Django's time zone")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 50 * 1024 * 1024

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"no_client_error_traceback": {"()": "annotation_site.log_filters.NoTracebackForClientErrors"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO",
                                                       doc="level of the console log")},
    # A refused request (403) is one line in the terminal, not a traceback; a server error keeps its traceback.
    "loggers": {"django.request": {"filters": ["no_client_error_traceback"]}},
}

# Celery: the engine's durability rests on these (see docs/guides/operations.md, "How nothing is lost").
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = "django-db"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fix-up closes the database connection around every task unless told to reuse it;
# reconnecting (and re-running the SQLite PRAGMAs) cost more than the annotation itself. With a pool a close only
# hands the connection back, which the process's other threads are waiting for.
CELERY_DB_REUSE_MAX = None if DATABASES["default"]["OPTIONS"].get("pool") else 1000
# Celery's own time limits do nothing in the threads pool: the engine checks this deadline itself before every LLM
# call and every wait (workers_app.engine.annotate), and requeues the sample once it is past.
TASK_SOFT_TIME_LIMIT = env_int("TASK_SOFT_TIME_LIMIT", 600, minimum=10,
                               doc=("seconds one sample may take in a worker, checked before every LLM call "
                                   "and every wait; past it the sample is requeued"))
# Longer than any task may hold its message (its deadline, plus the last call's timeout of at most 600 s), so a slow
# task is never handed to a second worker meanwhile.
# The queues, kombu's bindings and its unacknowledged-message hash live under the install's prefix too.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": TASK_SOFT_TIME_LIMIT + 600,
                                   "global_keyprefix": REDIS_KEY_PREFIX}
CELERY_TASK_DEFAULT_QUEUE = "control"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# Workbooks are written every FLUSH_EVERY_ROWS new outcomes or FLUSH_EVERY_SECONDS, whichever first.
FLUSH_EVERY_ROWS = env_int("FLUSH_EVERY_ROWS", 200, minimum=1,
                           doc="a worker flushes its workbook after this many new outcomes")
FLUSH_EVERY_SECONDS = env_int("FLUSH_EVERY_SECONDS", 10, minimum=1,
                              doc="... or after this many seconds, whichever comes first (FLUSH_EVERY_ROWS)")
BATCH_POLL_SECONDS = env_int("BATCH_POLL_SECONDS", 30, minimum=1,
                             doc="a batch-mode worker submits its pending samples and polls its provider batches "
                                 "this often")
WORKER_THREADS = env_int("WORKER_THREADS", 4, minimum=1, maximum=64,
                         doc="threads per built-in-baseline worker process")
# An LLM worker's requests in flight follow its annotator's rate limit and latency between these bounds (its thread
# pool has WORKER_MAX_INFLIGHT threads; WORKER_THREADS then sizes only the built-in baseline's pool). At most 64: the
# connections of a worker's HTTP client.
WORKER_MIN_INFLIGHT = env_int("WORKER_MIN_INFLIGHT", 1, minimum=1, maximum=64,
                              doc="an LLM worker's fewest requests in flight (an idle worker keeps it)")
WORKER_MAX_INFLIGHT = env_int("WORKER_MAX_INFLIGHT", 32, minimum=1, maximum=64,
                              doc=("an LLM worker's most requests in flight, sized every 3 s from its "
                                  "annotator's rate limit and latency; its thread pool has this many threads"))
if WORKER_MIN_INFLIGHT > WORKER_MAX_INFLIGHT:
    PROBLEMS.append(Problem("WORKER_MIN_INFLIGHT", str(WORKER_MIN_INFLIGHT),
                            f"expected at most WORKER_MAX_INFLIGHT ({WORKER_MAX_INFLIGHT})"))
    WORKER_MIN_INFLIGHT, WORKER_MAX_INFLIGHT = 1, 32
MAX_SAMPLE_CHARS = 100_000

# Fleet: one agent per host starts and stops that host's workers.
FLEET_HOST = env_str("FLEET_HOST", socket.gethostname(),
                     doc="which Worker rows this host's agent runs",
                     shown_default="the machine's host name")
HEARTBEAT_SECONDS = env_int("HEARTBEAT_SECONDS", 5, minimum=1,
                            doc="worker heartbeat period; drift is corrected within about this plus 2 s")
FLEET_STOP_GRACE_SECONDS = env_int("FLEET_STOP_GRACE_SECONDS", 60, minimum=1,
                                   doc="how long a stop waits before SIGKILL")
FLEET_FORCE_GRACE_SECONDS = env_int("FLEET_FORCE_GRACE_SECONDS", 3, minimum=1,
                                    doc="how long a forced stop waits before SIGKILL")
# Worker processes run at this lower CPU priority (nice), so that the web pages and the agent stay responsive
# while thirty busy workers share a few cores; 0 keeps them at the agent's priority. They boot at the agent's
# priority and lower themselves once ready, so a launch on a busy host is not slowed by it.
FLEET_WORKER_NICE = env_int("FLEET_WORKER_NICE", 10, minimum=0, maximum=19,
                            doc=("CPU priority (nice) of worker processes once they are ready (they boot at the "
                                 "agent's), so pages and the agent stay responsive; 0 keeps the agent's"))
# Each agent beats into its Host row; a host silent this long is lost (shown, alerted, its workers movable).
FLEET_HOST_LOST_SECONDS = env_int("FLEET_HOST_LOST_SECONDS", 30, minimum=5,
                                  doc="a host whose agent is silent this long is lost")
# Opt-in: the health sweep moves a lost host's workers to the live host that runs the fewest.
FLEET_AUTO_FAILOVER = env_bool("FLEET_AUTO_FAILOVER", False,
                               doc=("the health sweep moves a lost host's workers to the live host that runs "
                                   "the fewest"))
# Each agent checks its host's workbooks this often and publishes the result for the health sweep.
WORKBOOK_REPORT_SECONDS = env_int("WORKBOOK_REPORT_SECONDS", 10, minimum=1,
                                  doc="how often each agent checks its host's workbooks for the health sweep")
# Each agent looks this often for samples its idle running workers lost (see workers_app/fleet/lost_work.py); they
# are queued again at the second look that finds the same shortfall.
LOST_WORK_CHECK_SECONDS = env_int("LOST_WORK_CHECK_SECONDS", 10, minimum=1,
                                  doc=("how often each agent looks for samples an idle running worker lost; a "
                                      "shortfall seen at two looks in a row is queued again"))

# Health checks (a worker is healthy when all five pass) and alerts.
HEALTH_HEARTBEAT_MAX_AGE = env_int("HEALTH_HEARTBEAT_MAX_AGE", 60, minimum=1,
                                   doc=("health check: the oldest heartbeat a healthy worker may have, in "
                                       "seconds"))
HEALTH_STUCK_SECONDS = env_int("HEALTH_STUCK_SECONDS", 300, minimum=1,
                               doc="health check: a worker with work that stores nothing this long is stuck")
HEALTH_ERROR_WINDOW = env_int("HEALTH_ERROR_WINDOW", 100, minimum=1,
                              doc=("health check: how many of a worker's last outcomes the malformed share is "
                                  "taken over"))
HEALTH_ERROR_RATE = env_int("HEALTH_ERROR_RATE_PERCENT", 10, minimum=1, maximum=100,
                            doc="health check: the malformed share (percent) a healthy worker stays under") / 100
HEALTH_ALERT_ERROR_RATE = env_int("HEALTH_ALERT_ERROR_RATE_PERCENT", 20, minimum=1, maximum=100,
                                  doc="the error rate (percent) that raises an alert") / 100
HEALTH_MAX_RSS_MB = env_int("HEALTH_MAX_RSS_MB", 500, minimum=1,
                            doc="health check: the most memory (RSS, MB) a healthy worker uses")
AUTO_RESTARTS_PER_HOUR = env_int("AUTO_RESTARTS_PER_HOUR", 3, minimum=0,
                                 doc=("automatic restarts per worker per rolling hour; the next is refused and"
                                     " alerted"))
WORKBOOK_ALERT_MB = env_int("WORKBOOK_ALERT_MB", 100, minimum=1,
                            doc="alert when a workbook grows past this size")
DISK_ALERT_FREE_MB = env_int("DISK_ALERT_FREE_MB", 1024, minimum=1,
                             doc="alert when free disk falls below this")
ALERT_WEBHOOK_URL = env_str("ALERT_WEBHOOK_URL", "",
                            doc="alerts as JSON to this URL (works with Slack incoming webhooks)")
ALERT_EMAILS = env_list("ALERT_EMAILS", [],
                        doc="alerts by mail to these addresses (Django mail settings)")
METRICS_KEEP_DAYS = env_int("METRICS_KEEP_DAYS", 30, minimum=1,
                            doc="days the per-minute metrics are kept")
PROJECT_NAME = env_str("PROJECT_NAME", "annotation-fleet",
                       doc="the name a superuser types to confirm a factory reset in the admin")

# The optional local model server (./run.sh --local-llm) and the annotator profile that points at it.
LOCAL_LLM_PORT = env_int("LOCAL_LLM_PORT", 8081, minimum=1, maximum=65535,
                         doc="port of the local model server (./run.sh --local-llm)")
LOCAL_LLM_URL = env_str("LOCAL_LLM_URL", f"http://127.0.0.1:{LOCAL_LLM_PORT}/v1",
                        doc="base URL of the local model server, always allowed by the outbound policy",
                        shown_default="http://127.0.0.1:LOCAL_LLM_PORT/v1")
ARCHIVE_KEEP = env_int("ARCHIVE_KEEP", 7, minimum=1,
                       doc="automatic daily archives kept")
FLEET_AGENT_LOCK_SECONDS = env_int("FLEET_AGENT_LOCK_SECONDS", 30, minimum=1,
                                   doc="lifetime of an agent's host lock in Redis (renewed while it runs)")

# Security (docs/guides/security.md). Private, loopback and link-local addresses are refused for every URL staff can
# set, except those named here (hosts, IPs or CIDR networks; env only) and the local model server.
OUTBOUND_ALLOW = env_list("OUTBOUND_ALLOW", [],
                          doc=("hosts, IPs or CIDR networks that URLs staff set may point at although private "
                              "(e.g. a vLLM server on your network)"))
LLM_MAX_RESPONSE_BYTES = env_int("LLM_MAX_RESPONSE_BYTES", 256 * 1024, minimum=1024,
                                 doc="largest LLM answer read, after decompression")
IMPORT_MAX_BYTES = env_int("IMPORT_MAX_MB", 100, minimum=1,
                           doc="largest corpus or reference file, in MiB; any request body may be this plus 1 MiB"
                           ) * 1024 * 1024
IMPORT_MAX_ROWS = env_int("IMPORT_MAX_ROWS", 200_000, minimum=1,
                          doc="most rows in a corpus or reference file")
# The largest request body any page takes: an upload of IMPORT_MAX_BYTES and its form around it.
MAX_REQUEST_BYTES = IMPORT_MAX_BYTES + 1024 * 1024
ARCHIVE_MAX_MEMBER_BYTES = env_int("ARCHIVE_MAX_MEMBER_MB", 1024, minimum=1,
                                   doc="largest archive member verify and restore read") * 1024 * 1024
# Encrypts API keys stored in the database: comma-separated Fernet keys, the first encrypts; unset: a key kept in
# DATA_DIR/field_encryption_key (mode 600), made on first use.
FIELD_ENCRYPTION_KEY = env_list("FIELD_ENCRYPTION_KEY", [],
                                doc="Fernet keys that encrypt stored API keys, the first encrypts",
                                shown_default="a key made on first use in DATA_DIR/field_encryption_key (mode 600)")

# The HTTP API (docs/guides/api.md): personal tokens or the admin session; errors as {"error", "detail"}.
def _api_rate(name: str, default: str, *, doc: str, shown_default: str | None = None) -> str:
    value = env_str(name, default, doc=doc, shown_default=shown_default)
    if not re.fullmatch(r"[1-9][0-9]{0,8}/(s|sec|m|min|h|hour|d|day)", value):
        PROBLEMS.append(Problem(name, value, "expected requests/period, e.g. 600/min (period s, min, hour or day)"))
        return default
    return value


def _networks(name: str, default: list[str], *, doc: str) -> list[str]:
    values = env_list(name, default, doc=doc)
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            PROBLEMS.append(Problem(name, value, "expected IP addresses or CIDR networks, comma separated"))
            return default
    return values


# Requests per user (all their tokens and their browser session together); API_TOKEN_RATE is its former name.
API_USER_RATE = _api_rate(
    "API_USER_RATE",
    _api_rate("API_TOKEN_RATE", "600/min", doc="the former name of API_USER_RATE, still read"),
    doc="API requests per user (all their tokens and their session together) per period: s, min, hour or day",
    shown_default="600/min")
# Live (neither revoked nor expired) API tokens one user may have.
API_MAX_TOKENS_PER_USER = env_int("API_MAX_TOKENS_PER_USER", 5, minimum=1, maximum=100,
                                  doc="live (neither revoked nor expired) API tokens one user may have")
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.authentication.BearerTokenAuthentication",
                                       "rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.PerUserThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.BoundedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.errors.json_errors",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Annotation fleet API",
    "DESCRIPTION": "The fleet from scripts and notebooks: workers and their actions, health, progress, alerts, "
                   "data and the audit log. Authenticate with `Authorization: Bearer <token>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its docs are for staff who are logged in (a session or a token), like the rest of the API.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "api.schema.require_bodies"],
}
# /metrics answers a bearer METRICS_TOKEN, or any client in METRICS_ALLOW (addresses or CIDR networks).
METRICS_TOKEN = env_str("METRICS_TOKEN", "",
                        doc="a bearer token that may scrape /metrics")
METRICS_ALLOW = _networks("METRICS_ALLOW", ["127.0.0.1/32", "::1/128"],
                          doc="addresses or CIDR networks that may scrape /metrics without a token")
