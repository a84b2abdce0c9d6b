# The application every mod_wsgi-express option set of tests/express.rs
# serves. Each URL prints facts a client can compare between C mod_wsgi and
# mod_wsgi_rs; lines for the error log start with "express-app:" so the test
# can pick them out. Values that differ from one run to the next by nature
# (ports, pids, times) are left out or masked here, or normalized by the test.

import os
import sys

import mod_wsgi

print("express-app: module loaded as %s" % __name__)

# Keys whose values are compared (present or "<unset>").
KEYS = [
    "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING",
    "REQUEST_URI", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL",
    "SERVER_SOFTWARE", "HTTP_HOST", "REMOTE_ADDR", "REMOTE_USER",
    "AUTH_TYPE", "HTTP_AUTHORIZATION", "HTTPS", "CONTENT_TYPE",
    "CONTENT_LENGTH", "DOCUMENT_ROOT", "SCRIPT_FILENAME", "PATH_TRANSLATED",
    "EXPRESS_EXTRA", "wsgi.url_scheme", "wsgi.multithread",
    "wsgi.multiprocess", "wsgi.run_once", "wsgi.version",
    "mod_wsgi.process_group", "mod_wsgi.application_group",
    "mod_wsgi.callable_object", "mod_wsgi.script_reloading",
    "mod_wsgi.handler_script", "mod_wsgi.request_handler",
    "mod_wsgi.script_name", "mod_wsgi.path_info", "mod_wsgi.mount_point",
    "mod_wsgi.listener_host", "mod_wsgi.listener_port",
    "mod_wsgi.enable_sendfile", "mod_wsgi.ignore_activity",
]

# SSL_ variables whose value changes with every connection.
SSL_VARYING = {"SSL_SESSION_ID"}


def text_response(start_response, body, status="200 OK",
                  ctype="text/plain; charset=utf-8", extra=()):
    data = body.encode("utf-8")
    start_response(status, [("Content-Type", ctype),
                            ("Content-Length", str(len(data)))] + list(extra))
    return [data]


def env_report(environ, callable_name):
    lines = ["callable=%s" % callable_name]
    for key in KEYS:
        lines.append("%s=%r" % (key, environ.get(key, "<unset>")))
    for key in sorted(k for k in environ if k.startswith("SSL_")):
        value = "<varies>" if key in SSL_VARYING else environ[key]
        lines.append("%s=%r" % (key, value))
    return "\n".join(lines) + "\n"


def sys_report():
    try:
        import express_helper  # from --python-path
        helper = express_helper.VALUE
    except ImportError as e:
        helper = "ImportError: %s" % e
    lines = [
        "cwd=%s" % os.getcwd(),
        "helper=%s" % helper,
        "argv=%r" % (getattr(sys, "argv", "<unset>"),),
        "prefix=%s" % sys.prefix,
        "main=%s" % __name__,
    ]
    for name in ("process_group", "application_group", "maximum_processes",
                 "threads_per_process"):
        lines.append("mod_wsgi.%s=%r" % (name, getattr(mod_wsgi, name, "<missing>")))
    for name in ("MOD_WSGI_EXPRESS", "MOD_WSGI_SERVER_NAME",
                 "MOD_WSGI_SERVER_ALIASES", "MOD_WSGI_RELOADER_ENABLED",
                 "LANG", "LC_ALL", "HOME", "USER", "PYTHONPATH",
                 "PYTHONHOME", "EXPRESS_ENVVARS"):
        lines.append("os.environ[%s]=%r" % (name, os.environ.get(name, "<unset>")))
    lines.extend("sys.path=%s" % p for p in sys.path)
    return "\n".join(lines) + "\n"


def handle(environ, start_response, callable_name):
    path = environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING", "")

    if path == "/env":
        return text_response(start_response, env_report(environ, callable_name))

    if path == "/keys":
        # Every environ key (names only: values are compared by /env).
        return text_response(start_response, "\n".join(sorted(environ)) + "\n")

    if path == "/sys":
        return text_response(start_response, sys_report())

    if path == "/echo":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        data = environ["wsgi.input"].read(length)
        body = "len=%d type=%s\n" % (len(data), environ.get("CONTENT_TYPE"))
        return text_response(start_response, body + data.decode("latin-1"))

    if path == "/log":
        print("express-app: print to stdout q=%s" % query)
        print("express-app: print to stderr q=%s" % query, file=sys.stderr)
        environ["wsgi.errors"].write("express-app: wsgi.errors q=%s\n" % query)
        environ["wsgi.errors"].writelines(["express-app: writelines 1\n",
                                           "express-app: writelines 2\n"])
        sys.stdout.flush()
        sys.stderr.flush()
        environ["wsgi.errors"].flush()
        return text_response(start_response, "logged\n")

    if path == "/status":
        code = query or "200"
        reasons = {"200": "OK", "201": "Created", "404": "Not Found",
                   "410": "Gone", "500": "Internal Server Error"}
        status = "%s %s" % (code, reasons.get(code, "Whatever"))
        return text_response(start_response, "status %s\n" % status, status,
                             extra=[("X-Express-Status", code)])

    if path == "/error":
        raise RuntimeError("express-app: raised on purpose")

    if path == "/text":
        # Compressible: --compress-responses deflates text/plain.
        body = "".join("line %04d of a compressible response\n" % i
                       for i in range(400))
        return text_response(start_response, body)

    if path == "/json":
        body = '{"items": [%s]}' % ", ".join(str(i) for i in range(500))
        return text_response(start_response, body, ctype="application/json")

    if path == "/binary":
        body = bytes(range(256)) * 8
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [body]

    if path == "/metrics":
        lines = []
        for name in ("server_metrics", "process_metrics"):
            fn = getattr(mod_wsgi, name, None)
            if fn is None:
                lines.append("%s: missing" % name)
                continue
            try:
                value = fn()
            except Exception as e:
                lines.append("%s: raised %s" % (name, type(e).__name__))
                continue
            if isinstance(value, dict):
                lines.append("%s: dict keys=%s" % (name, ",".join(sorted(value))))
            else:
                lines.append("%s: %s" % (name, type(value).__name__))
        return text_response(start_response, "\n".join(lines) + "\n")

    if path == "/reload":
        import express_helper
        return text_response(start_response, "helper=%s\n" % express_helper.VALUE)

    return text_response(start_response, "app %s: %s\n" % (callable_name, path))


def application(environ, start_response):
    return handle(environ, start_response, "application")


def express_app(environ, start_response):
    """The entry point named by --callable-object express_app."""
    return handle(environ, start_response, "express_app")
