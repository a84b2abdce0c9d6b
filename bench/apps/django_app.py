# The Django contender page (`/page`), as a WSGI script for every server:
# the template engine, one query against SQLite through the ORM, and the
# session, CSRF and common middleware on the way in and out.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
