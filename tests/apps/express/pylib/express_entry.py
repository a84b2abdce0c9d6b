# The --application-type module entry point of tests/express.rs: the same
# application as app.wsgi (its code run in this module), found on
# --python-path.
import os

_path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "app.wsgi")
with open(_path) as _f:
    exec(compile(_f.read(), _path, "exec"))
