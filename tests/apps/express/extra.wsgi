# Mounted by the --include-file configuration (tests/express.rs): a second
# application in a daemon process group of its own.
import sys

import mod_wsgi


def application(environ, start_response):
    print("express-app: extra app %s" % environ.get("PATH_INFO"))
    body = "\n".join([
        "extra",
        "SCRIPT_NAME=%r" % environ.get("SCRIPT_NAME"),
        "PATH_INFO=%r" % environ.get("PATH_INFO"),
        "EXPRESS_EXTRA=%r" % environ.get("EXPRESS_EXTRA"),
        "process_group=%r" % environ.get("mod_wsgi.process_group"),
        "application_group=%r" % environ.get("mod_wsgi.application_group"),
        "module.process_group=%r" % mod_wsgi.process_group,
        "module.application_group=%r" % mod_wsgi.application_group,
        "pylib_on_path=%r" % any(p.endswith("/pylib") for p in sys.path),
    ]) + "\n"
    data = body.encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(data)))])
    return [data]
