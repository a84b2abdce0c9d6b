"""mod_wsgi_rs: the Apache module (mod_wsgi_rs.so, built by setup.py) and
the mod_wsgi_rs-express command that configures and runs Apache with it."""

import os

MODULE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mod_wsgi_rs.so")
