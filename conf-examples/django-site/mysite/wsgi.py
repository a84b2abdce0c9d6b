"""The WSGI entry point Apache loads (WSGIScriptAlias in ../../django.conf).
The project directory is on sys.path through python-path=."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

application = get_wsgi_application()
