"""mod_wsgi_rs-express: Apache with mod_wsgi_rs from one command.

  module-config     the LoadModule and WSGIPythonHome lines for an existing
                    Apache (the module embeds this Python)
  module-location   the path of the module
  setup-server      write a server root: httpd.conf, handler.wsgi, apachectl
  start-server      the same, then run Apache in the foreground

The options, their defaults and what the generated configuration does are
those of mod_wsgi-express (mod_wsgi 4.x-6.x): daemon mode, one process group
named HOST:PORT, the document root's files served as they are and every
other URL handed to the application.
"""

import argparse
import os
import pwd
import shlex
import shutil
import subprocess
import sys

from . import MODULE_PATH

LOG_LEVELS = ["emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"] + [
    "trace%d" % n for n in range(1, 9)
]
MPMS = ("event", "worker", "prefork")
DEFAULT_APPLICATION = """\
# The page mod_wsgi_rs-express serves when no application script is given.
def application(environ, start_response):
    body = b"mod_wsgi_rs-express is running: give it your WSGI script file.\\n"
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
"""


class UsageError(Exception):
    """A bad option or argument: reported by argparse, exit status 2."""


# ------------------------------------------------------------ Apache facts


def apache_layout():
    """SBINDIR, TARGET, LIBEXECDIR and SYSCONFDIR of the Apache the module
    was built for: recorded by setup.py, else asked of apxs now (a source
    tree run)."""
    try:
        from . import apxs_config
    except ImportError:
        apxs = os.environ.get("APXS") or shutil.which("apxs") or "/usr/bin/apxs"
        layout = {}
        for name in ("SBINDIR", "TARGET", "LIBEXECDIR", "SYSCONFDIR"):
            try:
                out = subprocess.run([apxs, "-q", name], capture_output=True, text=True)
            except OSError as e:
                raise UsageError("cannot run apxs (%s) to find Apache: %s; "
                                 "give --httpd-executable and --modules-directory" % (apxs, e))
            layout[name] = out.stdout.strip()
        return layout
    return {name: getattr(apxs_config, name)
            for name in ("SBINDIR", "TARGET", "LIBEXECDIR", "SYSCONFDIR")}


def python_home():
    return os.path.normpath(sys.prefix)


# ------------------------------------------------------------ commands


def cmd_module_config(args):
    print('LoadModule wsgi_module "%s"' % MODULE_PATH)
    print('WSGIPythonHome "%s"' % python_home())


def cmd_module_location(args):
    print(MODULE_PATH)


def cmd_setup_server(args):
    server = Server(args)
    server.warn_unreachable()
    server.write()
    server.print_summary()
    print("Control Script     : %s" % server.apachectl)


def cmd_start_server(args):
    server = Server(args)
    server.warn_unreachable()
    server.write()
    server.print_summary()
    sys.stdout.flush()
    os.chdir(server.working_directory)
    # Apache replaces this process: the caller's signals (SIGTERM, SIGINT)
    # reach the Apache parent, which stops its children and daemons.
    os.execv(server.httpd, [server.httpd, "-f", server.httpd_conf, "-DFOREGROUND"])


# ------------------------------------------------------------ the server root


def existing_path(value, what, want_dir=None):
    path = os.path.abspath(value)
    if not os.path.exists(path):
        raise UsageError("%s %s does not exist" % (what, path))
    if want_dir is True and not os.path.isdir(path):
        raise UsageError("%s %s is not a directory" % (what, path))
    if want_dir is False and not os.path.isfile(path):
        raise UsageError("%s %s is not a file" % (what, path))
    return path


def quoted(value):
    """An Apache configuration argument in single quotes."""
    if "'" in value or "\n" in value:
        raise UsageError("%r: quotes and newlines cannot be put in the configuration" % value)
    return "'%s'" % value


class Server:
    """Everything setup-server writes, worked out from the options."""

    def __init__(self, args):
        if not MODULE_PATH or not os.path.isfile(MODULE_PATH):
            raise UsageError("the module %s is missing: install this package with "
                             "pip (it builds the module)" % MODULE_PATH)
        for name in ("port", "https_port"):
            value = getattr(args, name)
            if value is not None and not 0 < value < 65536:
                raise UsageError("--%s %d is not a TCP port" % (name.replace("_", "-"), value))
        if args.processes is not None and args.processes < 1:
            raise UsageError("--processes must be 1 or more")
        if args.threads < 1:
            raise UsageError("--threads must be 1 or more")

        self.port = args.port
        self.listen_host = args.host
        self.host = args.host or "localhost"
        # How the host is written in a URL and in Listen.
        self.url_host = "[%s]" % self.host if ":" in self.host else self.host
        self.processes = args.processes
        self.threads = args.threads
        self.log_level = args.log_level
        self.log_to_terminal = args.log_to_terminal
        self.reload_on_changes = args.reload_on_changes
        self.server_status = args.server_status
        self.callable_object = args.callable_object
        self.working_directory = existing_path(
            args.working_directory or os.getcwd(), "--working-directory", want_dir=True)
        self.python_paths = [existing_path(p, "--python-path", want_dir=True)
                             for p in args.python_path]
        self.url_aliases = [(url, existing_path(target, "--url-alias target"))
                            for url, target in args.url_alias]
        for url, _ in self.url_aliases:
            if not url.startswith("/"):
                raise UsageError("--url-alias %s: the URL path must start with /" % url)

        self.https_port = args.https_port
        cert, key = args.ssl_certificate_file, args.ssl_certificate_key_file
        if (cert or key) and not self.https_port:
            raise UsageError("--https-port is needed with --ssl-certificate-file "
                             "and --ssl-certificate-key-file")
        if self.https_port:
            if not (cert and key):
                raise UsageError("--https-port needs --ssl-certificate-file and "
                                 "--ssl-certificate-key-file")
            if self.https_port == self.port:
                raise UsageError("--https-port and --port are both %d" % self.port)
            cert = existing_path(cert, "--ssl-certificate-file", want_dir=False)
            key = existing_path(key, "--ssl-certificate-key-file", want_dir=False)
        self.ssl_certificate_file, self.ssl_certificate_key_file = cert, key

        self.user, self.group = self.run_as(args.user, args.group)

        # apxs's answers are needed unless both Apache paths are given.
        layout = (None if args.httpd_executable and args.modules_directory
                  else apache_layout())
        self.sysconfdir = layout["SYSCONFDIR"] if layout else ""
        if args.httpd_executable:
            httpd = args.httpd_executable
        else:
            httpd = os.path.join(layout["SBINDIR"], layout["TARGET"])
        if not (os.path.isfile(httpd) and os.access(httpd, os.X_OK)):
            raise UsageError("the Apache executable %s is missing or not executable: "
                             "give --httpd-executable" % httpd)
        self.httpd = os.path.abspath(httpd)
        if args.modules_directory:
            self.modules_directory = existing_path(
                args.modules_directory, "--modules-directory", want_dir=True)
        else:
            self.modules_directory = layout["LIBEXECDIR"]
        self.mpm = next((m for m in MPMS if self.module_file("mpm_%s" % m)), None)
        if self.https_port and not self.module_file("ssl"):
            raise UsageError("--https-port needs mod_ssl, not found in %s" % self.modules_directory)

        root = args.server_root or os.path.join(
            os.environ.get("TMPDIR", "/tmp").rstrip("/") or "/tmp",
            "mod_wsgi_rs-%s:%d:%d" % (self.host, self.port, os.getuid()))
        self.server_root = os.path.abspath(root)
        if args.script:
            self.script = existing_path(args.script, "the WSGI script", want_dir=False)
        else:
            self.script = os.path.join(self.server_root, "default.wsgi")
        self.document_root = (existing_path(args.document_root, "--document-root", want_dir=True)
                              if args.document_root
                              else os.path.join(self.server_root, "htdocs"))
        self.process_group = "%s:%d" % (self.host, self.port)
        self.httpd_conf = os.path.join(self.server_root, "httpd.conf")
        self.handler_script = os.path.join(self.server_root, "handler.wsgi")
        self.apachectl = os.path.join(self.server_root, "apachectl")
        self.error_log = ("/dev/stderr" if self.log_to_terminal
                          else os.path.join(self.server_root, "error_log"))

    @staticmethod
    def run_as(user, group):
        """The User and Group of Apache's children and daemon processes.
        Apache only switches when started as root; then a non-root account
        is needed (www-data when it exists and none is given)."""
        if os.geteuid() == 0:
            if user is None:
                try:
                    pwd.getpwnam("www-data")
                except KeyError:
                    raise UsageError("running as root: give --user and --group "
                                     "(the account Apache's processes run as)")
                user = "www-data"
            if user in ("root", "#0"):
                raise UsageError("--user root: Apache's children may not run as root")
            if group is None:
                try:
                    group = "#%d" % pwd.getpwnam(user).pw_gid
                except KeyError:
                    raise UsageError("--user %s: no such user" % user)
            return user, group
        return user or "#%d" % os.getuid(), group or "#%d" % os.getgid()

    def warn_unreachable(self):
        """Started as root, Apache's children and daemon processes run as
        another user: say which of the paths they need that user cannot
        reach through the permissions for others (a daemon that cannot
        read Python's standard library dies at every start)."""
        if os.geteuid() != 0:
            return
        needed = [sys.prefix, sys.base_prefix, MODULE_PATH, self.script,
                  self.working_directory, self.document_root]
        needed += self.python_paths + [target for _, target in self.url_aliases]
        for path in needed:
            blocked = blocked_ancestor(path)
            if blocked:
                print("warning: Apache's processes run as %s and may not reach %s: "
                      "%s is not open to others" % (self.user, path, blocked),
                      file=sys.stderr)

    def module_file(self, name):
        path = os.path.join(self.modules_directory, "mod_%s.so" % name)
        return path if os.path.isfile(path) else None

    def load_module(self, name):
        """LoadModule for a module Apache may have compiled in or loaded."""
        path = self.module_file(name)
        if path is None:
            return []
        return ["<IfModule !%s_module>" % name,
                "LoadModule %s_module %s" % (name, quoted(path)),
                "</IfModule>"]

    def mime_types(self):
        for path in (os.path.join(self.sysconfdir, "mime.types"),
                     "/etc/mime.types"):
            if os.path.isfile(path):
                return path
        return os.devnull

    def mpm_lines(self):
        """Apache's children in daemon mode only pass requests on: enough
        worker threads for every daemon thread plus spares, as
        mod_wsgi-express sizes them."""
        daemon_threads = (self.processes or 1) * self.threads
        clients = 10 + max(10, int(1.5 * daemon_threads))
        per_child = 10 if clients <= 20 else int(clients / (int(clients / 20) + 1))
        children = -(-clients // per_child)
        lines = []
        if self.mpm:
            lines += ["<IfModule !mpm_event_module>", "<IfModule !mpm_worker_module>",
                      "<IfModule !mpm_prefork_module>",
                      "LoadModule mpm_%s_module %s" % (self.mpm, quoted(self.module_file("mpm_" + self.mpm))),
                      "</IfModule>", "</IfModule>", "</IfModule>"]
        for mpm in ("event", "worker"):
            lines += ["<IfModule mpm_%s_module>" % mpm,
                      "ServerLimit %d" % children,
                      "ThreadLimit %d" % per_child,
                      "ThreadsPerChild %d" % per_child,
                      "StartServers 1",
                      "MaxRequestWorkers %d" % (children * per_child),
                      "MinSpareThreads %d" % per_child,
                      "MaxSpareThreads %d" % (children * per_child),
                      "MaxConnectionsPerChild 0",
                      "</IfModule>"]
        lines += ["<IfModule mpm_prefork_module>",
                  "ServerLimit %d" % clients,
                  "MaxRequestWorkers %d" % clients,
                  "StartServers 1",
                  "MinSpareServers 1",
                  "MaxSpareServers %d" % max(1, clients // 10),
                  "MaxConnectionsPerChild 0",
                  "</IfModule>"]
        return lines

    def listen(self, port):
        if not self.listen_host:
            return "Listen %d" % port
        return "Listen %s:%d" % (self.url_host, port)

    def httpd_conf_text(self):
        group = quoted(self.process_group)
        daemon = ["WSGIDaemonProcess %s" % group,
                  "    display-name=%s" % quoted("(wsgi:%s:%d:%d)" % (self.host, self.port, os.getuid())),
                  "    home=%s" % quoted(self.working_directory),
                  "    threads=%d" % self.threads]
        if self.processes is not None:
            # Given at all, even as 1, --processes makes wsgi.multiprocess true.
            daemon.append("    processes=%d" % self.processes)
        if self.python_paths:
            daemon.append("    python-path=%s" % quoted(":".join(self.python_paths)))
        lines = [
            "# Written by mod_wsgi_rs-express for %s" % self.script,
            "# (%s)" % " ".join(sys.argv),
            # Apache takes no IPv6 literal as ServerName ("[" is a wildcard).
            "ServerName %s" % ("localhost" if ":" in self.host else self.host),
            "ServerRoot %s" % quoted(self.server_root),
            "PidFile %s" % quoted(os.path.join(self.server_root, "httpd.pid")),
            "DefaultRuntimeDir %s" % quoted(self.server_root),
            "ServerTokens ProductOnly",
            "ServerSignature Off",
            "User %s" % self.user,
            "Group %s" % self.group,
            self.listen(self.port),
        ]
        lines += self.mpm_lines()
        for name in ("unixd", "authz_core", "mime", "alias", "rewrite"):
            lines += self.load_module(name)
        if self.https_port:
            lines += self.load_module("ssl")
        if self.server_status:
            lines += self.load_module("status")
            lines += self.load_module("authz_host")
        lines += [
            "LoadModule wsgi_module %s" % quoted(MODULE_PATH),
            "TypesConfig %s" % quoted(self.mime_types()),
            "HostnameLookups Off",
            "KeepAlive Off",
            "ErrorLog %s" % quoted(self.error_log),
            "LogLevel %s" % self.log_level,
            "<Directory />",
            "    AllowOverride None",
            "    Require all denied",
            "</Directory>",
            "",
            "WSGIPythonHome %s" % quoted(python_home()),
            "WSGIRestrictEmbedded On",
            "WSGISocketPrefix %s" % quoted(os.path.join(self.server_root, "wsgi")),
            " \\\n".join(daemon),
            "",
            "# The document root's files are served as they are; any other URL",
            "# goes to the application through handler.wsgi.",
            "DocumentRoot %s" % quoted(self.document_root),
            "<Directory %s>" % quoted(self.document_root),
            "    AllowOverride None",
            "    Require all granted",
            "    RewriteEngine On",
            "    RewriteCond %{REQUEST_FILENAME} !-f",
        ]
        if self.server_status:
            lines.append("    RewriteCond %{REQUEST_URI} !^/(server|wsgi)-status$")
        lines += [
            "    RewriteRule .* - [H=wsgi-handler]",
            "</Directory>",
            "<Directory %s>" % quoted(self.server_root),
            "    <Files handler.wsgi>",
            "        Require all granted",
            "    </Files>",
            "</Directory>",
            "WSGIHandlerScript wsgi-handler %s process-group=%s application-group=%%{GLOBAL}"
            % (quoted(self.handler_script), group),
        ]
        if self.server_status:
            # Apache's own page and ours (the daemon groups' processes and
            # threads), from this machine only.
            for url, handler in (("/server-status", "server-status"), ("/wsgi-status", "wsgi-status")):
                lines += ["<Location %s>" % url, "    SetHandler %s" % handler,
                          "    Require local", "</Location>"]
        if self.reload_on_changes:
            # Loaded when each daemon process starts, so its change monitor
            # runs before the first request.
            lines.append("WSGIImportScript %s process-group=%s application-group=%%{GLOBAL}"
                         % (quoted(self.handler_script), group))
        # Longest URL first: a longer alias must win over its prefix.
        for url, target in sorted(self.url_aliases, reverse=True):
            lines.append("Alias %s %s" % (quoted(url), quoted(target)))
            if os.path.isdir(target):
                lines += ["<Directory %s>" % quoted(target), "    Require all granted", "</Directory>"]
            else:
                lines += ["<Directory %s>" % quoted(os.path.dirname(target)),
                          "    <Files %s>" % quoted(os.path.basename(target)),
                          "        Require all granted", "    </Files>", "</Directory>"]
        if self.https_port:
            lines += [
                "",
                self.listen(self.https_port),
                "<VirtualHost _default_:%d>" % self.https_port,
                "    SSLEngine On",
                "    SSLCertificateFile %s" % quoted(self.ssl_certificate_file),
                "    SSLCertificateKeyFile %s" % quoted(self.ssl_certificate_key_file),
                "</VirtualHost>",
            ]
        return "\n".join(lines) + "\n"

    def handler_text(self):
        return HANDLER_TEMPLATE % {
            "script": repr(self.script),
            "callable_object": repr(self.callable_object),
            "reload_on_changes": repr(self.reload_on_changes),
        }

    def apachectl_text(self):
        return APACHECTL_TEMPLATE % {
            "server_root": self.server_root,
            "httpd": shlex.quote(self.httpd),
            "httpd_conf": shlex.quote(self.httpd_conf),
            "working_directory": shlex.quote(self.working_directory),
        }

    def write(self):
        # Worked out first: a value the configuration cannot hold is
        # refused before anything is written.
        files = [(self.httpd_conf, self.httpd_conf_text(), 0o644),
                 (self.handler_script, self.handler_text(), 0o644),
                 (self.apachectl, self.apachectl_text(), 0o755)]
        if not os.path.isdir(self.server_root):
            os.makedirs(self.server_root)
            # Apache's children and daemon processes (another user when
            # started as root) reach handler.wsgi and the socket in here.
            os.chmod(self.server_root, 0o755)
        if self.document_root == os.path.join(self.server_root, "htdocs"):
            os.makedirs(self.document_root, exist_ok=True)
        if self.script == os.path.join(self.server_root, "default.wsgi"):
            write_text(self.script, DEFAULT_APPLICATION)
        for path, text, mode in files:
            write_text(path, text, mode)

    def print_summary(self):
        print("Server URL         : http://%s:%d/" % (self.url_host, self.port))
        if self.https_port:
            print("Server URL (HTTPS) : https://%s:%d/" % (self.url_host, self.https_port))
        print("Application        : %s" % self.script)
        print("Server Root        : %s" % self.server_root)
        print("Server Conf        : %s" % self.httpd_conf)
        print("Error Log File     : %s (%s)" % (self.error_log, self.log_level))
        print("Daemon Processes   : %d x %d threads, as %s"
              % (self.processes or 1, self.threads, self.user))


def blocked_ancestor(path):
    """The first directory on the way to `path` that others cannot enter,
    or `path` itself when others cannot read it; None when all is open."""
    path = os.path.abspath(path)
    if not os.path.exists(path):
        return None
    parts = path.split(os.sep)
    for i in range(2, len(parts)):
        directory = os.sep.join(parts[:i])
        if not os.stat(directory).st_mode & 0o001:
            return directory
    mode = os.stat(path).st_mode
    if not mode & 0o004 or (os.path.isdir(path) and not mode & 0o001):
        return path
    return None


def write_text(path, text, mode=0o644):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


HANDLER_TEMPLATE = '''\
# Written by mod_wsgi_rs-express: loads the application script and passes it
# every request that no file of the document root answers.
import os
import signal
import sys
import threading
import time
import types

SCRIPT = %(script)s
CALLABLE_OBJECT = %(callable_object)s
RELOAD_ON_CHANGES = %(reload_on_changes)s


def _load():
    module = types.ModuleType("__wsgi__")
    module.__file__ = SCRIPT
    with open(SCRIPT, "rb") as f:
        code = compile(f.read(), SCRIPT, "exec", dont_inherit=True)
    sys.modules["__wsgi__"] = module
    exec(code, module.__dict__)
    if not hasattr(module, CALLABLE_OBJECT):
        raise RuntimeError("%%s defines no %%r" %% (SCRIPT, CALLABLE_OBJECT))
    return getattr(module, CALLABLE_OBJECT)


_application = _load()


def handle_request(environ, start_response):
    # WSGIHandlerScript calls handle_request. Reached through the document
    # root's rewrite, the whole URL path is the application's (mounted at /).
    environ["PATH_INFO"] = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    environ["SCRIPT_NAME"] = ""
    return _application(environ, start_response)


def _watch(interval=1.0):
    """Restarts this daemon process (SIGINT: it exits, Apache starts a new
    one) when the script or the file of any loaded module changes."""
    seen = {}

    def changed(path):
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            return path in seen
        return seen.setdefault(path, mtime) != mtime

    def first_changed():
        paths = [SCRIPT] + [getattr(m, "__file__", None) for m in list(sys.modules.values())]
        return next((p for p in paths if isinstance(p, str) and changed(p)), None)

    first_changed()  # the times to compare with
    print("mod_wsgi_rs-express: watching for changes in daemon process %%d" %% os.getpid(),
          file=sys.stderr, flush=True)
    while True:
        time.sleep(interval)
        path = first_changed()
        if path:
            print("mod_wsgi_rs-express: %%s changed: restarting daemon process %%d"
                  %% (path, os.getpid()), file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGINT)
            return


if RELOAD_ON_CHANGES and not getattr(sys, "_mod_wsgi_rs_express_watching", False):
    sys._mod_wsgi_rs_express_watching = True
    threading.Thread(target=_watch, name="mod_wsgi_rs-express reloader", daemon=True).start()
'''

APACHECTL_TEMPLATE = """\
#!/bin/sh
# Written by mod_wsgi_rs-express setup-server: runs Apache on the
# configuration in %(server_root)s.
HTTPD=%(httpd)s
CONF=%(httpd_conf)s
cd %(working_directory)s || exit 1
case "$1" in
start|stop|restart|graceful|graceful-stop)
    command="$1"; shift
    exec "$HTTPD" -f "$CONF" -k "$command" "$@"
    ;;
configtest)
    exec "$HTTPD" -f "$CONF" -t
    ;;
*)
    echo "usage: $0 start|stop|restart|graceful|graceful-stop|configtest" >&2
    exit 2
    ;;
esac
"""


# ------------------------------------------------------------ options


def server_options():
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("script", nargs="?", help="the WSGI script file (default: a welcome page)")
    p.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    p.add_argument("--host", help="the address to listen on (default: all)")
    p.add_argument("--processes", type=int, help="daemon processes (default 1)")
    p.add_argument("--threads", type=int, default=5, help="threads per daemon process (default 5)")
    p.add_argument("--url-alias", nargs=2, action="append", default=[],
                   metavar=("URL-PATH", "FILE-PATH"), help="serve a directory or file at a URL")
    p.add_argument("--document-root", help="files served as they are (default: SERVER-ROOT/htdocs)")
    p.add_argument("--python-path", action="append", default=[], metavar="DIRECTORY",
                   help="add a directory to the module search path")
    p.add_argument("--working-directory", metavar="DIRECTORY",
                   help="the daemon processes' current directory (default: this one)")
    p.add_argument("--callable-object", default="application",
                   help="the name of the WSGI callable in the script")
    p.add_argument("--log-level", default="warn", choices=LOG_LEVELS, metavar="LEVEL",
                   help="Apache's LogLevel: %s (default warn)" % ", ".join(LOG_LEVELS[:8]))
    p.add_argument("--log-to-terminal", action="store_true",
                   help="send the error log to the terminal")
    p.add_argument("--reload-on-changes", action="store_true",
                   help="restart the daemon processes when a loaded Python file changes")
    p.add_argument("--server-status", action="store_true",
                   help="Apache's status at /server-status and the daemon processes' at /wsgi-status"
                   " (from this machine only)")
    p.add_argument("--https-port", type=int, help="also serve HTTPS on this port")
    p.add_argument("--ssl-certificate-file", metavar="FILE")
    p.add_argument("--ssl-certificate-key-file", metavar="FILE")
    p.add_argument("--server-root", metavar="DIRECTORY",
                   help="where the configuration and logs go (default: a directory in $TMPDIR)")
    p.add_argument("--httpd-executable", metavar="FILE",
                   help="the Apache binary (default: the one apxs named at build time)")
    p.add_argument("--modules-directory", metavar="DIRECTORY",
                   help="Apache's modules (default: the one apxs named at build time)")
    p.add_argument("--user", help="run Apache's children and daemons as this user (when root)")
    p.add_argument("--group", help="... and this group")
    return p


def build_parser():
    parser = argparse.ArgumentParser(
        prog="mod_wsgi_rs-express",
        description="Run a WSGI application in Apache with mod_wsgi_rs.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.add_parser("module-config", help="print the LoadModule and WSGIPythonHome lines"
                        ).set_defaults(run=cmd_module_config)
    commands.add_parser("module-location", help="print the path of the module"
                        ).set_defaults(run=cmd_module_location)
    options = server_options()
    commands.add_parser("setup-server", parents=[options],
                        help="write a server root with httpd.conf and apachectl"
                        ).set_defaults(run=cmd_setup_server)
    commands.add_parser("start-server", parents=[options],
                        help="write the server root and run Apache in the foreground"
                        ).set_defaults(run=cmd_start_server)
    return parser, commands


def main(argv=None):
    parser, commands = build_parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except UsageError as e:
        commands.choices[args.command].error(str(e))


if __name__ == "__main__":
    main()
