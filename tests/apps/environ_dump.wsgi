# Dumps the WSGI environ one key per line: key, type name, repr of the value
# (tab separated), for tests/differential.rs to compare C mod_wsgi with
# mod_wsgi_rs. The request body is read first so that both servers have
# consumed it the same way.
def application(environ, start_response):
    body = environ["wsgi.input"].read()
    lines = []
    for key in sorted(environ):
        value = environ[key]
        lines.append("%s\t%s\t%r" % (key, type(value).__name__, value))
    # What a WSGI application may call on the objects (PEP 3333).
    for key, methods in [("wsgi.input", ("read", "readline", "readlines", "__iter__")),
                         ("wsgi.errors", ("write", "writelines", "flush"))]:
        missing = [m for m in methods if not callable(getattr(environ[key], m, None))]
        lines.append("%s.methods\tlist\t%r" % (key, missing or "all"))
    lines.append("body\tbytes\t%r" % body)
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return ["\n".join(lines).encode("utf-8")]
