# --host-access-script: everything but URLs under /forbidden.


def allow_access(environ, host):
    uri = environ.get("REQUEST_URI", "")
    print("express-app: allow_access host=%r uri=%s" % (host, uri))
    return not uri.startswith("/forbidden")
