"""mod_wsgi_rs: the Apache module (mod_wsgi_rs.so, built by setup.py) and
the mod_wsgi_rs-express command that configures and runs Apache with it."""

import os

# MOD_WSGI_RS_MODULE names another build of the module: `make run` serves
# from the source tree with the module cargo built, without installing.
MODULE_PATH = os.environ.get("MOD_WSGI_RS_MODULE") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "mod_wsgi_rs.so")
