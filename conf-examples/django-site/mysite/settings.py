# Settings of the example Django site (see ../../django.conf).
#
# Before serving it:
#   python manage.py migrate           creates var/db.sqlite3
#   python manage.py createsuperuser   an account for /admin/
#   python manage.py collectstatic     copies CSS/JS into static/ for Apache
# and make var/ writable by the daemon's user (SQLite writes beside the
# database file), e.g. `chown -R www-data: var`.
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# Replace with a long random string of your own, kept out of version control.
SECRET_KEY = "example-only-replace-me-with-a-long-random-string"
DEBUG = False
# The host names the site answers to.
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "mysite.urls"
WSGI_APPLICATION = "mysite.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "var" / "db.sqlite3",
    }
}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Apache serves these, not Django: `Alias /static/ .../static/` in
# django.conf points at STATIC_ROOT, which collectstatic fills from the
# apps and from STATICFILES_DIRS.
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "assets"]

# Errors go to stderr, which mod_wsgi_rs writes to Apache's error log.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}
