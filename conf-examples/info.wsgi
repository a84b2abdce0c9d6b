# What the application sees: the process and user it runs as, the
# daemon group (empty in embedded mode), and the request's scheme and
# protocol, as "key=value" lines. A diagnostic page: do not leave it
# mounted on a public site.
import os
import pwd


def application(environ, start_response):
    facts = {
        "pid": os.getpid(),
        "uid": os.getuid(),
        "user": pwd.getpwuid(os.getuid()).pw_name,
        "process_group": environ.get("mod_wsgi.process_group", ""),
        "application_group": environ.get("mod_wsgi.application_group", ""),
        "multithread": environ["wsgi.multithread"],
        "multiprocess": environ["wsgi.multiprocess"],
        "url_scheme": environ["wsgi.url_scheme"],
        "server_protocol": environ["SERVER_PROTOCOL"],
        "server_name": environ["SERVER_NAME"],
    }
    body = "".join(f"{k}={v}\n" for k, v in facts.items()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
