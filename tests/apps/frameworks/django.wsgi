# Django project entry point for tests/frameworks.rs (the project directory
# is on the path through WSGIPythonPath / python-path=).
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djproj.settings")

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
