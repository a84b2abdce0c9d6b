# The application tests/express_rs.rs serves with mod_wsgi_rs-express: it
# answers key=value lines saying where and how it runs.
import os
import sys

VERSION = "1"


def application(environ, start_response):
    try:
        import express_rs_helper
        helper = express_rs_helper.VALUE
    except ImportError:
        helper = "not importable"
    lines = [
        "version=" + VERSION,
        "pid=%d" % os.getpid(),
        "uid=%d" % os.getuid(),
        "cwd=" + os.getcwd(),
        "prefix=" + sys.prefix,
        "script_name=" + environ["SCRIPT_NAME"],
        "path_info=" + environ["PATH_INFO"],
        "url_scheme=" + environ["wsgi.url_scheme"],
        "server_port=" + environ["SERVER_PORT"],
        "multiprocess=%s" % environ["wsgi.multiprocess"],
        "process_group=" + environ.get("mod_wsgi.process_group", ""),
        "helper=" + helper,
        "callable=" + environ.get("express_rs.callable", "application"),
    ]
    body = ("\n".join(lines) + "\n").encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


def alternate(environ, start_response):
    """What --callable-object alternate serves."""
    environ["express_rs.callable"] = "alternate"
    return application(environ, start_response)
