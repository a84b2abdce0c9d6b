# The page of each site in virtual-hosts.conf: which host it is, the user
# its daemon runs as, and for each site's private file whether this
# process can read it (its own: yes; the other site's: PermissionError).
# The daemon's working directory is its site's private directory (home=).
import os
import pwd


def application(environ, start_response):
    lines = [
        f"host={environ['SERVER_NAME']}",
        f"process_group={environ.get('mod_wsgi.process_group', '')}",
        f"uid={os.getuid()}",
        f"user={pwd.getpwuid(os.getuid()).pw_name}",
        f"cwd={os.getcwd()}",
    ]
    sites = os.path.dirname(os.getcwd())
    for name in sorted(os.listdir(sites)):
        try:
            with open(os.path.join(sites, name, "private.txt")) as f:
                f.read()
            outcome = "readable"
        except OSError as e:
            outcome = type(e).__name__
        lines.append(f"{name}/private.txt={outcome}")
    body = "".join(line + "\n" for line in lines).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
