"""captiondesk settings: every difference between dev, test and production comes from the
environment.

See .env.example for the full list of variables.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# The process environment wins over the file (read_env only sets what is not set yet).
env_file = Path(env.str("CAPTIONDESK_ENV_FILE", default=str(BASE_DIR / ".env")))
if env_file.exists():
    environ.Env.read_env(env_file)
VAR_DIR = Path(env.str("CAPTIONDESK_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=False)
if DEBUG:
    SECRET_KEY = env.str("SECRET_KEY", default="insecure-dev-only-key-set-SECRET_KEY-in-production")
elif env.str("SECRET_KEY", default=""):
    SECRET_KEY = env.str("SECRET_KEY")
else:
    # Never a default shipped in the repository: without SECRET_KEY, a random per-installation key
    # kept in var/secret_key (mode 600; `make run` writes the same file), so manage.py commands work
    # on a machine set up by `make run`. Deployments with several hosts set SECRET_KEY.
    _key_file = VAR_DIR / "secret_key"
    if not _key_file.exists():
        import secrets

        VAR_DIR.mkdir(parents=True, exist_ok=True)
        _key_file.touch(mode=0o600)
        _key_file.write_text(secrets.token_urlsafe(50))
    SECRET_KEY = _key_file.read_text().strip()

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "axes",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "labeling",
    "routing",
    "review",
    "integrations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "captiondesk.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Before anything reads the body (the CSRF check reads POST): 413 from Content-Length.
    "captiondesk.middleware.RequestSizeLimitMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lockout into the 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "captiondesk.urls"
WSGI_APPLICATION = "captiondesk.wsgi.application"

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

# SQLite is the explicit first-run default; set DATABASE_URL for PostgreSQL.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
# Persistent connections (per thread), checked before reuse: a worker thread captioning a large
# run would otherwise open a PostgreSQL connection (a server process) for every task.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server and the worker write to the same file without "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault(
        "init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    )
    DATABASES["default"]["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")
    DATABASES["default"]["OPTIONS"].setdefault("timeout", 20)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # No JIT: this app's queries are short, and PostgreSQL compiles any query whose cost estimate
    # passes jit_above_cost, which an EXISTS filter over a large table easily does: 0.2 s of
    # compiling for a 25 ms query (benchmarks/risk_refresh.py, the run selection).
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault("options", "-c jit=off")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    # 0.5, not Django's 0.7: "annA1234" for user annA (0.67) must fail.
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"max_similarity": 0.5},
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "captiondesk.passwords.ProductNameSimilarityValidator"},
]
# Login throttling (django-axes) on the login page and /admin/login/: after AXES_FAILURE_LIMIT
# wrong passwords for one username (from anywhere) or from one address (for any username), that
# username or address is refused for AXES_COOLOFF_MINUTES, even with the right password. A
# success resets the count. Addresses are REMOTE_ADDR; behind a reverse proxy set
# AXES_IPWARE_PROXY_COUNT (never trust a client's X-Forwarded-For otherwise).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("AXES_COOLOFF_MINUTES", default=15.0))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_CALLABLE = "captiondesk.passwords.login_username"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
if env.int("AXES_IPWARE_PROXY_COUNT", default=0):
    AXES_IPWARE_PROXY_COUNT = env.int("AXES_IPWARE_PROXY_COUNT")
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "labeling:project-list"
LOGOUT_REDIRECT_URL = "login"
# Invitations to join a project: how long a link works. Emails go through Django's email backend;
# the console backend (printed to the server's log) until an operator sets an SMTP one.
INVITATION_DAYS = env.int("INVITATION_DAYS", default=7)
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="captiondesk@localhost")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "/media/"  # never served directly: images go through permission-checked views
# Static files are served from the source folders too, so a first run needs no collectstatic.
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {
        "BACKEND": env.str("STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage")
    },
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Uploads go to disk past 2.5 MB instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_NUMBER_FILES = env.int("DATA_UPLOAD_MAX_NUMBER_FILES", default=1000)

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Secure by default wherever the app is served under a real host name: HTTPS only cookies, a
# redirect to HTTPS and HSTS (`manage.py check --deploy` is clean). Served only on this machine
# (`make run`, the default ALLOWED_HOSTS), plain http://localhost keeps working. Each can be set.
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}
_SERVED_PUBLICLY = not DEBUG and any(h not in _LOCAL_HOSTS for h in ALLOWED_HOSTS)
SECURE_COOKIES = env.bool("SECURE_COOKIES", default=_SERVED_PUBLICLY)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=SECURE_COOKIES)
# Probes speak plain HTTP inside the deployment.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^livez$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if SECURE_COOKIES else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
# Behind a proxy that terminates TLS and sets X-Forwarded-Proto (and strips it from clients).
if env.bool("TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Celery -------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        # Task time limits stay below this, so a slow task is never redelivered while it runs.
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    }
    # Several deployments (or test runs) can share one Redis database under distinct prefixes.
    if env.str("CELERY_BROKER_KEY_PREFIX", default=""):
        CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = env.str("CELERY_BROKER_KEY_PREFIX")
else:
    # A broker that needs no server, for a first run on one machine.
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # Exchange tables (broadcast/pidbox); kombu would otherwise write ./control in the cwd.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=1800)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=1700)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fix-up closes every database connection before and after every task unless
# this is set; captiondesk/celery.py tidies them the way Django does between requests instead
# (CONN_MAX_AGE, health checks), so a worker keeps its connections.
CELERY_DB_REUSE_MAX = 2**31
CELERY_TASK_ROUTES = {
    "routing.tasks.caption_*_gpu": {"queue": "gpu"},
    "routing.tasks.*": {"queue": "api"},
}
# Periodic work (run by `celery beat`; `make run` starts one beside its worker).
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    # Captions left "running" by a dead worker, and pending ones whose message was lost.
    "routing-caption-sweep": {
        "task": "routing.tasks.caption_sweep",
        "schedule": env.float("ROUTING_SWEEP_INTERVAL_S", default=60.0),
    },
    # Review leases past their expiry free their slot (the claim query ignores them anyway).
    "review-leases-expire": {"task": "review.tasks.leases_expire", "schedule": 60.0},
    # Risk flags written by an older analyser version are recomputed.
    "review-risk-flags-refresh": {
        "task": "review.tasks.risk_flags_refresh_stale",
        "schedule": 600.0,
    },
    # Big projects' comparison and dashboard figures are rebuilt as per-day sums (review.rollups).
    "review-metric-rollups": {
        "task": "review.tasks.metric_rollups_refresh",
        "schedule": env.float("METRICS_ROLLUP_INTERVAL_S", default=600.0),
    },
}

CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Ingestion ----------------------------------------------------------------------------
INGEST_MAX_BYTES = env.int("INGEST_MAX_BYTES", default=50 * 1024 * 1024)
INGEST_MAX_PIXELS = env.int("INGEST_MAX_PIXELS", default=64_000_000)
# Decoded size (pixels x bands x bytes per sample): 64 M pixels of 8-bit RGBA pass, the same
# pixels at 16 bits per sample (512 MB once decoded) are refused from the header.
INGEST_MAX_DECODED_BYTES = env.int("INGEST_MAX_DECODED_BYTES", default=256 * 1024 * 1024)
INGEST_NEAR_DUPLICATE_DISTANCE = env.int("INGEST_NEAR_DUPLICATE_DISTANCE", default=5)
ZIP_MAX_MEMBERS = env.int("ZIP_MAX_MEMBERS", default=20_000)
ZIP_MAX_TOTAL_BYTES = env.int("ZIP_MAX_TOTAL_BYTES", default=4 * 1024 * 1024 * 1024)
ZIP_MAX_RATIO = env.int("ZIP_MAX_RATIO", default=200)
# Request bodies, refused with a 413 from Content-Length before they are read
# (captiondesk/middleware.py): one image at the ingestion limit plus its form, and zip archives
# (or predictions files) uploaded in one request.
REQUEST_MAX_BYTES = env.int("REQUEST_MAX_BYTES", default=INGEST_MAX_BYTES + 1024 * 1024)
ZIP_UPLOAD_MAX_BYTES = env.int("ZIP_UPLOAD_MAX_BYTES", default=2 * 1024 * 1024 * 1024)
URL_FETCH_TIMEOUT_S = env.float("URL_FETCH_TIMEOUT_S", default=15.0)
URL_FETCH_MAX_BYTES = env.int("URL_FETCH_MAX_BYTES", default=50 * 1024 * 1024)
URL_FETCH_MAX_REDIRECTS = env.int("URL_FETCH_MAX_REDIRECTS", default=5)
# Networks URL imports may reach although they are not public (e.g. an intranet image server).
# Empty by default: loopback, private, link-local, CGNAT and metadata addresses are refused.
URL_FETCH_ALLOW_NETWORKS = env.list("URL_FETCH_ALLOW_NETWORKS", default=[])
# Grid tiles and the image page's preview. The review screen shows the full-size copy, made on
# first request (labeling/services/derivatives.py).
THUMBNAIL_SIZES = {
    "small": env.int("THUMBNAIL_SMALL_PX", default=256),
    "large": env.int("THUMBNAIL_LARGE_PX", default=1024),
}

# --- Model providers ----------------------------------------------------------------------
EDENAI_API_KEY = env.str("EDENAI_API_KEY", default="")
EDENAI_BASE_URL = env.str("EDENAI_BASE_URL", default="https://api.edenai.run")
REPLICATE_API_TOKEN = env.str("REPLICATE_API_TOKEN", default="")
REPLICATE_BASE_URL = env.str("REPLICATE_BASE_URL", default="https://api.replicate.com")
OLLAMA_BASE_URL = env.str("OLLAMA_BASE_URL", default="http://127.0.0.1:11434")

# --- Routing: retries, circuit breaker, sweeps (defaults in routing/services/config.py) ----------
for _name in (
    "ROUTING_BACKOFF_BASE_S",
    "ROUTING_BACKOFF_MAX_S",
    "ROUTING_MAX_RETRY_AFTER_S",
    "ROUTING_BREAKER_FAILURES",
    "ROUTING_BREAKER_FAILURE_RATE",
    "ROUTING_BREAKER_WINDOW",
    "ROUTING_BREAKER_MIN_CALLS",
    "ROUTING_BREAKER_COOLDOWN_S",
    "ROUTING_BREAKER_PROBE_TIMEOUT_S",
    "ROUTING_LEASE_MARGIN_S",
    "ROUTING_MAX_DEADLINE_S",
    "ROUTING_POISON_LIMIT",
    "ROUTING_REQUEUE_AFTER_S",
    "ROUTING_REQUEUE_IDLE_AFTER_S",
    "ROUTING_API_BATCH_MAX",
    "ROUTING_GPU_BATCH_SIZE",
):
    if env.str(_name, default=""):
        globals()[_name] = env.float(_name)
ROUTING_REDIS_PREFIX = env.str("ROUTING_REDIS_PREFIX", default="captiondesk:routing:")

# --- Review ------------------------------------------------------------------------------
REVIEW_LEASE_SECONDS = env.int("REVIEW_LEASE_SECONDS", default=300)
REVIEW_HEARTBEAT_SECONDS = env.int("REVIEW_HEARTBEAT_SECONDS", default=60)
REVIEW_UNDO_SECONDS = env.int("REVIEW_UNDO_SECONDS", default=30)
# Default flag thresholds per category, e.g. RISK_THRESHOLDS=chart=0.5,screenshot=0.5,medical=0.4
# (a project's review policy can override them).
RISK_THRESHOLDS = {k: float(v) for k, v in env.dict("RISK_THRESHOLDS", default={}).items()}
# Images whose flags are re-checked per beat tick (every 10 min) after the analyser changes.
RISK_REFRESH_PER_TICK = env.int("RISK_REFRESH_PER_TICK", default=5000)
# Comparisons and dashboards: reviewer time is costed at this rate when set (0 = left out), and a
# comparison reads "not enough data yet" until every compared route has this many decided images.
REVIEWER_HOURLY_USD = env.float("REVIEWER_HOURLY_USD", default=0.0)
COMPARISON_MIN_IMAGES = env.int("COMPARISON_MIN_IMAGES", default=30)
# Projects with this many review items read those pages from rollups rebuilt every
# METRICS_ROLLUP_INTERVAL_S seconds; smaller ones are computed live on every request.
METRICS_ROLLUP_MIN_CAPTIONS = env.int("METRICS_ROLLUP_MIN_CAPTIONS", default=200_000)
METRICS_ROLLUP_INTERVAL_S = env.float("METRICS_ROLLUP_INTERVAL_S", default=600.0)

# The API (/api/): per-user tokens (Authorization: Bearer ...) for scripts, the session for the
# browser; no HTTP Basic. Throttling counts per token (per user for sessions, per IP anonymous).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "integrations.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "integrations.api_common.IdCursorPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_THROTTLE_CLASSES": ["integrations.throttling.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "token": env.str("API_THROTTLE_RATE", default="1200/minute"),
        "anon": env.str("API_THROTTLE_ANON_RATE", default="60/minute"),
    },
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "captiondesk API",
    "DESCRIPTION": "Projects, images, captioning runs, review and webhooks of captiondesk.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/",
    "ENUM_NAME_OVERRIDES": {
        "ImageStatusEnum": "labeling.models.Image.Status",
        "BatchStatusEnum": "labeling.models.ImportBatch.Status",
        "BatchKindEnum": "labeling.models.ImportBatch.Kind",
        "ImportItemStatusEnum": "labeling.models.ImportItem.Status",
        "RunStatusEnum": "routing.models.CaptionRun.Status",
        "RunKindEnum": "routing.models.CaptionRun.Kind",
        "CaptionStatusEnum": "routing.models.Caption.Status",
        "CallStatusEnum": "routing.models.ModelCall.Status",
        "VerdictDecisionEnum": "review.models.Verdict.Decision",
        "AdjudicationDecisionEnum": "review.models.Adjudication.Decision",
        "ReviewItemStateEnum": "review.models.ReviewItem.State",
        "LeaseStateEnum": "review.models.Lease.State",
        "RiskCategoryEnum": "labeling.models.RiskCategory",
    },
}

# --- Webhooks ----------------------------------------------------------------------------------
# Deliveries pass the URL-import SSRF rules (URL_FETCH_ALLOW_NETWORKS opens private networks).
# Deliveries whose task message was lost are queued again (every minute).
CELERY_BEAT_SCHEDULE["integrations-webhook-sweep"] = {
    "task": "integrations.tasks.webhook_deliveries_sweep",
    "schedule": 60.0,
}
WEBHOOK_TIMEOUT_S = env.float("WEBHOOK_TIMEOUT_S", default=10.0)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=6)
WEBHOOK_BACKOFF_BASE_S = env.float("WEBHOOK_BACKOFF_BASE_S", default=30.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"kombu_hostname": {"()": "captiondesk.logfilters.DropKombuDefaultHostname"}},
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"kombu.connection": {"filters": ["kombu_hostname"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
