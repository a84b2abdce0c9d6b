# The WSGI entry point Apache loads: python-path= in ../flask.conf puts this
# directory on sys.path, so the application module imports by name.
from app import app as application
