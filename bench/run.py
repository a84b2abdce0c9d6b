#!/usr/bin/python3
"""`make bench`: mod_wsgi_rs side by side with C mod_wsgi on the same Apache.

Each contender (mod_wsgi_rs, C mod_wsgi 4.9.4 from Debian, C mod_wsgi 6.x
from PyPI when it builds, and Apache serving the same bytes as static files)
runs in turn on the same port under the same configuration, loaded by wrk
from this machine. In daemon-mode scenarios two peers outside mod_wsgi run
too, as what users would otherwise pick: gunicorn (gthread, the same
processes x threads) on its own, and Apache + mod_proxy_http in front of
that gunicorn. For every scenario the contenders are alternated
A, B, C, D, A, B, C, D ... for BENCH_PAIRS rounds; each Apache is started
fresh for one measurement and stopped afterwards. The report gives the
median of the per-round ratios.

Stdlib only; run as root with /usr/bin/python3 (Apache's children run as
www-data). Environment:
  BENCH_QUICK=1      smoke run (~3 minutes): 5 scenarios, 2 rounds, 2 s runs
  BENCH_PAIRS=N      rounds per scenario (default 3, quick 2)
  BENCH_DURATION=S   seconds of each measured wrk run (default 4, quick 2)
  BENCH_WARMUP=S     seconds of wrk warm-up before each run (default 1)
  BENCH_PORT=P       port (default 18089)
  BENCH_ONLY=a,b     only scenarios whose id contains one of these strings
  BENCH_CONTENDERS=  only these contenders (ids: rs, c4, c6, static,
                     gunicorn, proxy)
  BENCH_RESTART_DURATION=S  seconds of a restart scenario's run (default 20,
                     quick 10): a graceful restart every 5 s meanwhile
"""

import argparse
import datetime
import hashlib
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import sqlite3
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# The Apache to run and its modules (the Makefile exports them from apxs);
# C mod_wsgi is Debian's package, built for Debian's apache2.
APACHE = os.environ.get("MOD_WSGI_RS_APACHE") or "/usr/sbin/apache2"
MODULES = os.environ.get("MOD_WSGI_RS_MODULES_DIR") or "/usr/lib/apache2/modules"
DEBIAN_WSGI = "/usr/lib/apache2/modules/mod_wsgi.so"

HELLO = b"Hello World!\n"
BODY_64K = b"0123456789abcdef" * 4096
MIB = 1024 * 1024

# The WSGI scripts (copied from bench/apps into the site), by app name; the
# gunicorn peers import the same files as modules.
APPS = {"bench": "bench_app.py", "django": "django_app.py",
        "flask": "flask_app.py", "fastapi": "fastapi_app.py"}
# The apps that are ASGI: C mod_wsgi cannot serve them, and the gunicorn
# peer runs them with uvicorn's worker.
ASGI_APPS = {"fastapi"}
# What the real-application scenarios and the gunicorn peers need, in a venv
# of /usr/bin/python3 (target/bench/apps-venv).
APP_PACKAGES = ["Django>=5.2,<5.3", "Flask>=3.1,<3.2", "gunicorn>=23,<28",
                "fastapi>=0.115,<1", "uvicorn[standard]>=0.30,<1"]
# Their distribution names, for the versions in the report.
APP_DISTRIBUTIONS = ["Django", "Flask", "gunicorn", "fastapi", "uvicorn",
                     "uvloop"]


def workload(wid, path, check, post=0, conns=16, app="bench", restarts=0):
    """One wrk run's load: `check` names how the check request's body is
    verified, `restarts` a graceful restart every that many seconds during
    the run (0: none)."""
    return {"id": wid, "path": path, "check": check, "post": post,
            "conns": conns, "app": app, "restarts": restarts}


WORKLOADS = {w["id"]: w for w in [
    workload("hello", "/hello", "hello"),
    workload("64k", "/64k", "64k"),
    workload("file-1m", "/file", "file"),
    workload("post-1m", "/post", "post", post=MIB),
    workload("hello-c256", "/hello", "hello", conns=256),
    workload("django", "/page", "django", app="django"),
    workload("flask", "/api", "flask", app="flask"),
    workload("fastapi", "/api", "flask", app="fastapi"),
    workload("fastapi-sleep", "/sleep", "sleep", app="fastapi"),
    workload("hello-restarts", "/hello", "hello", restarts=5),
]}
# Mode id: (daemon processes, threads) or None for embedded mode; the MPM.
MODES = {
    "embedded": (None, "event"),
    "daemon-3x2": ((3, 2), "event"),
    "daemon-1x15": ((1, 15), "event"),
    "embedded-prefork": (None, "prefork"),
}
_EVERY = ["hello", "64k", "file-1m", "post-1m", "hello-c256", "django",
          "flask"]
SCENARIOS = ([(m, w) for m in ("embedded", "daemon-3x2", "daemon-1x15")
              for w in _EVERY]
             + [("embedded-prefork", "hello"), ("embedded-prefork", "django"),
                ("embedded", "hello-restarts"),
                ("daemon-3x2", "hello-restarts"),
                # ASGI: ours against gunicorn's uvicorn workers, alone and
                # behind Apache's mod_proxy, with the same processes.
                ("daemon-3x2", "fastapi"), ("daemon-3x2", "fastapi-sleep")])
QUICK_SCENARIOS = ["embedded/hello", "daemon-3x2/hello", "embedded/file-1m",
                   "daemon-3x2/post-1m", "daemon-3x2/django"]
# prefork: one child per connection and a few spare, all from the start.
PREFORK_CHILDREN = 20
PREFORK_APP_WARMUP = 8


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, **kw)


def out(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True,
                              check=False).stdout.strip()
    except OSError:
        return ""


# --------------------------------------------------------------- installing

def apt_install(packages):
    log("apt-get install " + " ".join(packages))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    run(sudo + ["apt-get", "update", "-qq"], env=env)
    run(sudo + ["apt-get", "install", "-y", "-qq"] + packages, env=env)


def install_prerequisites():
    missing = []
    if not shutil.which("wrk"):
        missing.append("wrk")
    if not os.path.exists(DEBIAN_WSGI):
        missing.append("libapache2-mod-wsgi-py3")
    if missing:
        apt_install(missing)


def install_pypi_mod_wsgi(venv):
    """Builds PyPI's mod-wsgi with apxs into a venv; returns (path, version)
    or (None, reason)."""
    express = os.path.join(venv, "bin", "mod_wsgi-express")
    if not os.path.exists(express):
        log(f"building PyPI mod-wsgi into {venv}")
        try:
            run(["/usr/bin/python3", "-m", "venv", venv])
            with open(venv + ".log", "w") as logf:
                run([os.path.join(venv, "bin", "pip"), "install", "-q",
                     "mod-wsgi"], stdout=logf, stderr=subprocess.STDOUT)
        except (subprocess.CalledProcessError, OSError) as e:
            log(f"PyPI mod-wsgi did not install ({e}); see {venv}.log; "
                "going on without it")
            return None, f"did not install: see {venv}.log"
    conf = out([express, "module-config"])
    m = re.search(r'LoadModule\s+wsgi_module\s+"?([^"\s]+)"?', conf)
    if not m or not os.path.exists(m.group(1)):
        return None, "mod_wsgi-express module-config gave no module"
    meta = out([os.path.join(venv, "bin", "pip"), "show", "mod-wsgi"])
    v = re.search(r"^Version:\s*(\S+)", meta, re.M)
    return m.group(1), v.group(1) if v else "?"


def install_app_venv(venv, may_install):
    """Django, Flask and gunicorn in a venv of /usr/bin/python3; returns
    ({package: version}, None) or (None, why not)."""
    python = os.path.join(venv, "bin", "python")

    def versions():
        if not os.path.exists(python):
            return {}
        text = out([python, "-c", "import importlib.metadata as m\n"
                    "for n in %r:\n"
                    "    try: print(n, m.version(n))\n"
                    "    except m.PackageNotFoundError: pass"
                    % (APP_DISTRIBUTIONS,)])
        return dict(line.split() for line in text.splitlines())

    have = versions()
    if any(n not in have for n in APP_DISTRIBUTIONS):
        if not may_install:
            if "gunicorn" not in have:
                return None, f"{venv} is missing and --no-install was given"
            return have, None
        log(f"installing {', '.join(APP_PACKAGES)} into {venv}")
        try:
            if not os.path.exists(python):
                run(["/usr/bin/python3", "-m", "venv", venv])
            with open(venv + ".log", "w") as logf:
                run([python, "-m", "pip", "install", "-q"] + APP_PACKAGES,
                    stdout=logf, stderr=subprocess.STDOUT)
        except (subprocess.CalledProcessError, OSError) as e:
            return None, f"did not install ({e}): see {venv}.log"
        have = versions()
    return have, None


def build_ours():
    log("building mod_wsgi_rs (make)")
    run(["make", "-s", "-C", REPO])
    return out(["make", "-s", "-C", REPO, "--no-print-directory",
                "module-path"]).splitlines()[-1]


# ------------------------------------------------------------ the site

def make_database(path):
    """The SQLite table the Django page queries: 100 items."""
    if os.path.exists(path):
        os.unlink(path)
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, "
                "name VARCHAR(100) NOT NULL, price DECIMAL NOT NULL)")
    con.executemany("INSERT INTO item VALUES (?, ?, ?)",
                    [(i, f"item {i}", f"{i * 1.25:.2f}")
                     for i in range(1, 101)])
    con.commit()
    con.close()


def make_site(site):
    """The apps, the database and the static files, world-readable
    (children are www-data)."""
    os.makedirs(site, exist_ok=True)
    apps = os.path.join(HERE, "apps")
    shutil.copyfile(os.path.join(apps, "bench.wsgi"),
                    os.path.join(site, APPS["bench"]))
    for name in ("django_app.py", "flask_app.py", "fastapi_app.py"):
        shutil.copyfile(os.path.join(apps, name), os.path.join(site, name))
    shutil.rmtree(os.path.join(site, "benchsite"), ignore_errors=True)
    shutil.copytree(os.path.join(apps, "benchsite"),
                    os.path.join(site, "benchsite"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    make_database(os.path.join(site, "bench.sqlite3"))
    for top, dirs, names in os.walk(site):
        for d in dirs:
            os.chmod(os.path.join(top, d), 0o755)
        for n in names:
            os.chmod(os.path.join(top, n), 0o644)
    files = {"hello": HELLO, "64k": BODY_64K}
    path = os.path.join(site, "file")
    if not os.path.exists(path) or os.path.getsize(path) != MIB:
        # Deterministic, incompressible-looking bytes.
        data = b"".join(hashlib.sha256(str(i).encode()).digest()
                        for i in range(MIB // 32))
        files["file"] = data
    for name, data in files.items():
        with open(os.path.join(site, name), "wb") as f:
            f.write(data)
        os.chmod(os.path.join(site, name), 0o644)
    # Every directory up to / must be searchable by www-data.
    d = site
    while d != "/":
        try:
            os.chmod(d, os.stat(d).st_mode | 0o055)
        except PermissionError:
            pass
        d = os.path.dirname(d)
    with open(path, "rb") as f:
        return f.read()


# ------------------------------------------------------------ Apache

def two_buckets_ratio():
    """The ListenCoresBucketsRatio that gives Apache exactly two listener
    buckets (online CPUs // ratio == 2), or None when none does."""
    cpus = os.cpu_count() or 1
    for ratio in range(1, cpus + 1):
        if cpus // ratio == 2:
            return ratio
    return None


def apache_conf(root, site, port, mode, module=None, app="bench",
                python_home=None, proxy_port=None, restarts=False):
    """httpd.conf of one contender: the same for all but the LoadModule
    line; `module` None serves the site as static files, or with
    `proxy_port` passes everything to the gunicorn on that port."""
    user = "User www-data\nGroup www-data\n" if os.geteuid() == 0 else ""
    daemon, mpm = MODES[mode]
    ratio = two_buckets_ratio()
    # A graceful restart starts the new children while the old ones finish:
    # with no free scoreboard slot ("scoreboard is full, not at
    # MaxRequestWorkers") the new ones wait for the old ones to go.
    server_limit = 4 if restarts else 2
    buckets_line = "# (one listening socket: no ListenCoresBucketsRatio " \
        "gives two buckets on this machine)" if ratio is None else f"""\
# A listening socket per child (SO_REUSEPORT: two buckets of CPUs, two
# children): the kernel spreads wrk's connections over both children. With
# one shared socket the child that woke first often took all 16
# connections, and an embedded CPU-bound app then ran on one GIL in some
# rounds and on two in others (a 2x swing in the Django figure).
ListenCoresBucketsRatio {ratio}"""
    if mpm == "prefork":
        mpm_lines = f"""LoadModule mpm_prefork_module {MODULES}/mod_mpm_prefork.so
# prefork: a child per connection and a few spare, all from the start.
StartServers {PREFORK_CHILDREN}
ServerLimit {PREFORK_CHILDREN}
MaxRequestWorkers {PREFORK_CHILDREN}
MinSpareServers {PREFORK_CHILDREN}
MaxSpareServers {PREFORK_CHILDREN + 1}
MaxConnectionsPerChild 0"""
    else:
        mpm_lines = f"""LoadModule mpm_event_module {MODULES}/mod_mpm_event.so
# Event MPM, two children from the start and never more or fewer, so no
# contender pays for a child (and a Python) started during a run; 256
# threads each, so that even if all 256 keep-alive connections land on one
# child none is closed early for want of a worker (with 2 x 128 wrk saw
# read errors, for the static files too).
{buckets_line}
StartServers 2
ServerLimit {server_limit}
ThreadLimit 256
ThreadsPerChild 256
MaxRequestWorkers 512
MinSpareThreads 32
MaxSpareThreads 512
MaxConnectionsPerChild 0"""
    conf = f"""# Generated by bench/run.py; identical for every contender but the
# module line (and, for the static contender, no WSGI lines at all).
ServerRoot "{root}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile "{root}/run/httpd.pid"
DefaultRuntimeDir "{root}/run"
Mutex file:{root}/run default
ErrorLog "{root}/logs/error.log"
LogLevel warn
ServerTokens Full
LoadModule authz_core_module {MODULES}/mod_authz_core.so
LoadModule mime_module {MODULES}/mod_mime.so
LoadModule alias_module {MODULES}/mod_alias.so
TypesConfig /etc/mime.types
{user}
{mpm_lines}
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 15
Timeout 60

DocumentRoot "{site}"
<Directory />
    Require all denied
    AllowOverride None
</Directory>
<Directory "{site}">
    Require all granted
</Directory>
"""
    if proxy_port:
        conf += f"""
LoadModule proxy_module {MODULES}/mod_proxy.so
LoadModule proxy_http_module {MODULES}/mod_proxy_http.so
ProxyPass / http://127.0.0.1:{proxy_port}/
"""
    elif module:
        conf += f"""
LoadModule wsgi_module {module}
WSGISocketPrefix "{root}/run/wsgi"
WSGIApplicationGroup %{{GLOBAL}}
"""
        if python_home:
            conf += f'WSGIPythonHome "{python_home}"\n'
        if daemon:
            p, t = daemon
            conf += (f"WSGIDaemonProcess bench processes={p} threads={t} "
                     "display-name=bench-daemon\nWSGIProcessGroup bench\n")
        conf += f'WSGIScriptAlias / "{site}/{APPS[app]}"\n'
    return conf


def stat_fields(pid):
    """The fields of /proc/PID/stat after the command name (fields[0] is
    the state), or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    return s[s.rindex(")") + 2:].split()


def proc_stat(pid):
    """(ppid, starttime) of a process, or None when it is gone."""
    fields = stat_fields(pid)
    return None if fields is None else (int(fields[1]), int(fields[19]))


def cpu_ticks(pid):
    """utime + stime of a process (clock ticks), or None when it is gone."""
    fields = stat_fields(pid)
    return None if fields is None else int(fields[11]) + int(fields[12])


def descendants(root_pid):
    """{pid: starttime} of every live descendant of root_pid."""
    parent_of = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st:
                parent_of[int(name)] = st
    found = {}
    frontier = {root_pid}
    while frontier:
        nxt = set()
        for pid, (ppid, start) in parent_of.items():
            if ppid in frontier and pid not in found:
                found[pid] = start
                nxt.add(pid)
        frontier = nxt
    return found


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def private_kib(pid):
    """Memory the process alone holds (Private_Clean + Private_Dirty of
    smaps_rollup, KiB): RSS without the pages it shares, such as a
    module's code mapped in the parent and every child."""
    total = None
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith(("Private_Clean:", "Private_Dirty:")):
                    total = (total or 0) + int(line.split()[1])
    except OSError:
        pass
    return total


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class Server:
    """One server in the foreground in its own session; stop() leaves no
    process behind (it is also called on Ctrl-C and on errors)."""

    live = []  # the ones running now, for the signal/exit path

    def __init__(self, root, port):
        self.root, self.port = root, port
        for d in ("run", "logs"):
            os.makedirs(os.path.join(root, d), exist_ok=True)
            os.chmod(os.path.join(root, d), 0o755)
        self.errlog = os.path.join(root, "logs", "error.log")
        self.stderr_path = os.path.join(root, "logs", "stderr.log")
        self.proc = None
        self.known = {}

    def command(self):
        raise NotImplementedError

    def start(self, probe):
        if port_busy(self.port):
            raise RuntimeError(f"port {self.port} is already in use "
                               "(set BENCH_PORT=)")
        self.log_offset = os.path.getsize(self.errlog) \
            if os.path.exists(self.errlog) else 0
        self.stderr_offset = os.path.getsize(self.stderr_path) \
            if os.path.exists(self.stderr_path) else 0
        self.proc = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=open(self.stderr_path, "a"),
            start_new_session=True)
        Server.live.append(self)
        deadline = time.monotonic() + 30
        last = None
        while time.monotonic() < deadline:
            self.known.update(descendants(self.proc.pid))
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start-up:\n"
                                   + self.stderr_tail() + self.log_tail())
            try:
                status, _, _ = request(self.port, probe, timeout=5)
                if status <= 500:
                    self.known.update(descendants(self.proc.pid))
                    return
            except OSError as e:
                last = e
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer in 30 s ({last}):\n"
                           + self.log_tail())

    def stderr_tail(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                f.seek(self.stderr_offset)
                return f.read()[-2000:]
        except OSError:
            return ""

    def log_tail(self, n=30):
        try:
            with open(self.errlog, errors="replace") as f:
                f.seek(getattr(self, "log_offset", 0))
                lines = f.read().splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def new_log_lines(self):
        return self.log_tail(n=10**6)

    def kind_of(self, pid):
        raise NotImplementedError

    def cpu_by_process(self):
        """{pid: (kind, CPU ticks so far)} of the server's children."""
        res = {}
        for kind, pid, _ in self.processes():
            ticks = cpu_ticks(pid)
            if ticks is not None:
                res[pid] = (kind, ticks)
        return res

    def processes(self):
        """[(kind, pid, rss KiB)] of the server's children: 'daemon' for
        the processes running Python apart from Apache's children, 'worker'
        for Apache's children."""
        res = []
        for pid in sorted(descendants(self.proc.pid)):
            st = proc_stat(pid)
            if not st or st[0] != self.proc.pid:
                continue
            res.append((self.kind_of(pid), pid, rss_kib(pid)))
        return res

    def stop(self):
        if self.proc is None:
            return
        try:
            self.known.update(descendants(self.proc.pid))
        except OSError:
            pass
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                log(f"{self.name} did not stop in 20 s: SIGKILL")
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        # Anything that left the process group (setsid) is killed by pid,
        # checking the start time so that a reused pid is never touched.
        deadline = time.monotonic() + 5
        while True:
            left = [p for p, start in self.known.items()
                    if (proc_stat(p) or (None, None))[1] == start]
            if not left:
                break
            if time.monotonic() > deadline:
                for p in left:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.2)
                deadline = time.monotonic() + 5
                continue
            time.sleep(0.05)
        self.known = {}
        self.proc = None
        if self in Server.live:
            Server.live.remove(self)
        # Daemon sockets and the pid file go with the server.
        for name in os.listdir(os.path.join(self.root, "run")):
            try:
                os.unlink(os.path.join(self.root, "run", name))
            except OSError:
                pass
        wait_port_free(self.port)

    @staticmethod
    def stop_all():
        for server in reversed(list(Server.live)):
            server.stop()


class Apache(Server):
    name = "apache2"

    def __init__(self, root, conf_text, port):
        super().__init__(root, port)
        self.conf = os.path.join(root, "httpd.conf")
        with open(self.conf, "w") as f:
            f.write(conf_text)

    def command(self):
        return [APACHE, "-f", self.conf, "-DFOREGROUND"]

    def kind_of(self, pid):
        # Daemon processes are titled by display-name=.
        return "daemon" if cmdline(pid).startswith("bench-daemon") \
            else "worker"

    def graceful(self):
        self.proc.send_signal(signal.SIGUSR1)


class Gunicorn(Server):
    """gunicorn's gthread workers serving one of the apps, as Apache's
    children do, as www-data when run as root."""
    name = "gunicorn"

    def __init__(self, root, venv, site, app, port, processes, threads):
        super().__init__(root, port)
        self.venv, self.site, self.app = venv, site, app
        self.processes_n, self.threads = processes, threads

    def command(self):
        user = ["--user", "www-data", "--group", "www-data"] \
            if os.geteuid() == 0 else []
        module = APPS[self.app][:-len(".py")]
        # An ASGI app runs in uvicorn's worker (its event loop: uvloop and
        # httptools, from uvicorn[standard]), as FastAPI's docs deploy it.
        worker = ["-k", "uvicorn.workers.UvicornWorker"] \
            if self.app in ASGI_APPS else \
            ["-k", "gthread", "--threads", str(self.threads)]
        return [os.path.join(self.venv, "bin", "gunicorn"),
                "--chdir", self.site] + worker + [
                "-w", str(self.processes_n),
                "-b", f"127.0.0.1:{self.port}", "--keep-alive", "15",
                "--log-level", "warning", "--error-logfile", self.errlog,
                "--worker-tmp-dir", "/dev/shm"] + user + \
            [f"{module}:application"]

    def kind_of(self, pid):
        return "daemon"

    def graceful(self):
        # gunicorn's graceful reload: new workers, old ones finish.
        self.proc.send_signal(signal.SIGHUP)


def port_busy(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_port_free(port, timeout=10):
    deadline = time.monotonic() + timeout
    while port_busy(port) and time.monotonic() < deadline:
        time.sleep(0.05)


def request(port, path, body=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        if body is None:
            conn.request("GET", path)
        else:
            conn.request("POST", path, body=body, headers={
                "Content-Type": "application/octet-stream"})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


# ------------------------------------------------------------ measuring

def wrk(port, path, conns, seconds, post_bytes):
    env = dict(os.environ, BENCH_BODY_BYTES=str(post_bytes))
    threads = min(2, conns)
    cmd = ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{seconds}s",
           "--timeout", "10s", "--latency", "-s",
           os.path.join(HERE, "report.lua"), f"http://127.0.0.1:{port}{path}"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env,
                       timeout=seconds + 60)
    for line in p.stdout.splitlines():
        if line.startswith("BENCHJSON "):
            r = json.loads(line[len("BENCHJSON "):])
            r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
            r["errors"] = sum(r[k] for k in
                              ("connect", "read", "write", "timeout"))
            return r
    raise RuntimeError(f"wrk gave no result (exit {p.returncode}):\n"
                       f"{p.stdout}\n{p.stderr}")


def applies(contender, mode, w):
    """Whether a contender runs in a scenario: static files only stand in
    for the bench app's GETs; the gunicorn peers have daemon mode's
    processes x threads and so only run in daemon-mode scenarios."""
    kind = contender["kind"]
    if kind == "static":
        return w["app"] == "bench" and not w["post"]
    if kind in ("gunicorn", "proxy"):
        return MODES[mode][0] is not None
    if w["app"] in ASGI_APPS:
        # C mod_wsgi has no ASGI.
        return contender["id"] == "rs"
    return True


def servers_for(contender, mode, w, cfg, paths):
    """The servers of one measurement, in start order; the last one is the
    one wrk talks to."""
    root = os.path.join(paths["bench"], "server")
    kind = contender["kind"]
    python_home = paths["apps_venv"] if w["app"] != "bench" else None
    if kind in ("module", "static"):
        return [Apache(root, apache_conf(
            root, paths["site"], cfg.port, mode, module=contender["module"],
            app=w["app"], python_home=python_home,
            restarts=bool(w["restarts"])), cfg.port)]
    processes, threads = MODES[mode][0]
    groot = os.path.join(paths["bench"], "gunicorn")
    if kind == "gunicorn":
        return [Gunicorn(groot, paths["apps_venv"], paths["site"], w["app"],
                         cfg.port, processes, threads)]
    # kind == "proxy"
    return [Gunicorn(groot, paths["apps_venv"], paths["site"], w["app"],
                     cfg.port + 1, processes, threads),
            Apache(root, apache_conf(root, paths["site"], cfg.port, mode,
                                     proxy_port=cfg.port + 1,
                                     restarts=bool(w["restarts"])),
                   cfg.port)]


def wrk_with_restarts(front, w, seconds, cfg):
    """wrk for `seconds` while the front server restarts gracefully every
    w["restarts"] seconds (what logrotate's reload does to a site)."""
    done = threading.Event()
    restarts = []

    def restarter():
        while not done.wait(w["restarts"]):
            front.graceful()
            restarts.append(time.monotonic())

    t = threading.Thread(target=restarter, daemon=True)
    t.start()
    try:
        r = wrk(cfg.port, w["path"], w["conns"], seconds, w["post"])
    finally:
        done.set()
        t.join()
    r["restarts"] = len(restarts)
    return r


def cpu_used(servers, before):
    """[(kind, pid, CPU ticks)] each child used since `before` (processes
    that came or went meanwhile, as in restarts, are left out)."""
    used = []
    for server, was in zip(servers, before):
        for pid, (kind, ticks) in server.cpu_by_process().items():
            if pid in was:
                used.append((kind, pid, ticks - was[pid][1]))
    return used


def busiest_worker_share(run):
    """The share of the Apache children's CPU time that the busiest one
    used during a run (None without two children to compare). In embedded
    mode each child has one GIL, so with a CPU-bound application a share
    near 1.0 means only one child served and the figure is half of what
    the machine can do."""
    ticks = [t for kind, _, t in run.get("cpu", []) if kind == "worker"]
    if len(ticks) < 2 or sum(ticks) <= 0:
        return None
    return max(ticks) / sum(ticks)


def measure(contender, mode, w, cfg, paths, checks):
    """Fresh servers, one check request, warm-up, one measured run, RSS,
    stop. Returns a dict (with 'failure' when it could not run)."""
    servers = servers_for(contender, mode, w, cfg, paths)
    res = {"contender": contender["id"], "mode": mode, "workload": w["id"]}
    try:
        for server in servers:
            server.start("/hello")
        body = b"x" * w["post"] if w["post"] else None
        status, headers, got = request(cfg.port, w["path"], body)
        res["server"] = headers.get("Server", "")
        wrong = checks[w["check"]](got) if status == 200 else \
            f"status {status} (expected 200)"
        if wrong:
            res["failure"] = f"check request {w['path']}: {wrong}"
            res["log"] = "\n".join(s.new_log_lines() for s in servers)[-3000:]
            return res
        warmup = cfg.warmup
        if MODES[mode][1] == "prefork" and w["app"] != "bench":
            # Each prefork child imports the app on its first request:
            # long enough for all of them, under load, to have done so.
            warmup = max(warmup, PREFORK_APP_WARMUP)
        if warmup > 0:
            wrk(cfg.port, w["path"], w["conns"], warmup, w["post"])
        cpu_before = [s.cpu_by_process() for s in servers]
        if w["restarts"]:
            res.update(wrk_with_restarts(servers[-1], w,
                                         cfg.restart_duration, cfg))
        else:
            res.update(wrk(cfg.port, w["path"], w["conns"], cfg.duration,
                           w["post"]))
        res["cpu"] = cpu_used(servers, cpu_before)
        res["procs"] = [p for s in servers for p in s.processes()]
        res["private"] = [(kind, pid, private_kib(pid))
                          for kind, pid, _ in res["procs"]]
        lines = "\n".join(l for s in servers
                          for l in s.new_log_lines().splitlines()
                          if re.search(r"\[[\w-]*:(warn|error|crit|alert|"
                                       r"emerg)\]|\[(ERROR|CRITICAL)\]", l))
        if lines:
            res["log"] = lines[-3000:]
        return res
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        res["failure"] = str(e)[:3000]
        return res
    finally:
        for server in reversed(servers):
            server.stop()


def body_checks(file_bytes):
    """How each workload's check request body is verified: the bench app's
    bodies byte for byte, the real apps' by what they must contain."""
    def exact(want):
        return lambda got: None if got == want else \
            f"{len(got)} bytes, not the {len(want)} expected"

    def django(got):
        for part in (b"<title>bench page</title>", b"<h1>20 items</h1>",
                     b"<td>Item 20</td><td>25.00</td>",
                     b'name="csrfmiddlewaretoken"'):
            if part not in got:
                return f"no {part!r} in the page"
        return None

    def flask(got):
        try:
            doc = json.loads(got)
        except ValueError:
            return "not JSON"
        if doc.get("count") != 20 or len(doc.get("items", [])) != 20:
            return f"not the 20 items: {got[:200]!r}"
        return None

    return {"hello": exact(HELLO), "64k": exact(BODY_64K),
            "file": exact(file_bytes), "post": exact(str(MIB).encode()),
            "django": django, "flask": flask,
            "sleep": exact(b'{"slept_ms":10}')}


# ------------------------------------------------------------ reporting

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt_ratio(x):
    return "n/a" if x is None else f"{x:.2f}x"


def fmt_ms(us):
    if us is None:
        return "n/a"
    return f"{us / 1000:.2f}" if us < 100000 else f"{us / 1000:.0f}"


def fmt_mib(kib):
    return "-" if kib is None else f"{kib / 1024:.1f}"


def summarise(scenarios, results, contenders):
    """Per scenario: median req/s, latency, errors per contender and the
    medians of the per-round ratios."""
    rows = []
    for mode, w in scenarios:
        sid = f"{mode}/{w['id']}"
        row = {"id": sid, "mode": mode, "workload": w["id"], "c": {},
               "restarts": w["restarts"]}
        by = {}
        for r in results:
            if r["mode"] == mode and r["workload"] == w["id"]:
                by.setdefault(r["contender"], []).append(r)
        for c in contenders:
            runs = by.get(c["id"], [])
            ok = [r for r in runs if "failure" not in r]
            daemons = [sum(k for kind, _, k in r["procs"]
                           if kind == "daemon" and k) for r in ok]
            workers = [sum(k for kind, _, k in r["procs"]
                           if kind == "worker" and k) for r in ok]
            private = [sum(k for kind, _, k in r.get("private", [])
                           if kind == "daemon" and k) for r in ok]
            last = ok[-1]["procs"] if ok else []
            row["c"][c["id"]] = {
                "applies": applies(c, mode, w),
                "runs": len(runs), "failed": len(runs) - len(ok),
                "failures": [r["failure"] for r in runs if "failure" in r],
                "rps": med([r["rps"] for r in ok]),
                "p50": med([r["p50_us"] for r in ok]),
                "p99": med([r["p99_us"] for r in ok]),
                "non2xx": sum(r["status"] for r in ok),
                "sockerr": sum(r["errors"] for r in ok),
                "daemon_rss": med(daemons) if any(daemons) else None,
                "worker_rss": med(workers) if any(workers) else None,
                "daemon_private": med(private) if any(private) else None,
                "daemon_each": [k for kind, _, k in last if kind == "daemon"],
                "worker_each": [k for kind, _, k in last if kind == "worker"],
                "graceful": sum(r.get("restarts", 0) for r in ok),
                "worker_share": [busiest_worker_share(r) for r in ok],
            }
        # Per-round ratios: round i of ours against round i of the other.
        def ratio(other):
            a = [r for r in by.get("rs", [])]
            b = [r for r in by.get(other, [])]
            rs = []
            for x, y in zip(a, b):
                if "failure" in x or "failure" in y or not y["rps"]:
                    continue
                rs.append(x["rps"] / y["rps"])
            return med(rs), rs
        row["ratio"] = {}
        for other in ("c4", "c6", "static", "gunicorn", "proxy"):
            row["ratio"][other], row.setdefault("rounds", {})[other] = \
                ratio(other)
        c4 = [r for r in by.get("c4", [])]
        st = [r for r in by.get("static", [])]
        row["c4_static"] = med([x["rps"] / y["rps"] for x, y in zip(c4, st)
                                if "failure" not in x and "failure" not in y
                                and y["rps"]])
        rows.append(row)
    return rows


def targets(rows):
    def get(sid, key):
        for r in rows:
            if r["id"] == sid:
                return r["ratio"].get(key)
        return None

    def check(label, value, goal):
        if value is None:
            return f"- not measured: {label} (goal >= {goal}x)"
        mark = "holds" if value >= goal else "**does not hold**"
        return f"- {mark}: {label}: {value:.3f}x (goal >= {goal}x)"

    lines = [
        check("daemon 3x2 hello vs C mod_wsgi 4.9.4",
              get("daemon-3x2/hello", "c4"), 1.5),
        check("embedded hello vs C mod_wsgi 4.9.4",
              get("embedded/hello", "c4"), 1.2),
        check("daemon 3x2 FastAPI JSON vs Apache + mod_proxy + gunicorn's "
              "uvicorn workers", get("daemon-3x2/fastapi", "proxy"), 1.5),
    ]
    for mode in MODES:
        v = get(f"{mode}/file-1m", "static")
        if v is not None:
            lines.append(check(f"{mode} file_wrapper 1 MiB vs static", v, 0.9))
    below = [(r["id"], r["ratio"]["c4"]) for r in rows
             if r["ratio"].get("c4") is not None and r["ratio"]["c4"] < 1.0]
    if below:
        lines.append("- **does not hold**: no scenario below 1.0x C mod_wsgi "
                     "4.9.4; below: " + ", ".join(
                         f"{sid} {v:.2f}x" for sid, v in below))
    elif any(r["ratio"].get("c4") is not None for r in rows):
        lines.append("- holds: no scenario below 1.0x C mod_wsgi 4.9.4")
    slower = [(r["id"], r["ratio"]["proxy"]) for r in rows
              if r["ratio"].get("proxy") is not None]
    if slower:
        lost = [(sid, v) for sid, v in slower if v < 1.0]
        lines.append(("- **does not hold**" if lost else "- holds")
                     + ": faster than Apache + mod_proxy + gunicorn in every "
                     "daemon scenario" + (
                         "; slower in: " + ", ".join(
                             f"{sid} {v:.2f}x" for sid, v in lost)
                         if lost else f" ({len(slower)} scenarios)"))
    for r in rows:
        # A graceful restart makes Apache close idle keep-alive connections
        # (static files too), which wrk counts as socket errors and which
        # clients retry; an error status is a request lost.
        ran = {i: d for i, d in r["c"].items() if d["runs"] > d["failed"]}
        if not r["restarts"] or "rs" not in ran:
            continue
        seen = ", ".join(f"{i} {d['non2xx']} error statuses + "
                         f"{d['sockerr']} socket errors" for i, d in
                         ran.items())
        lines.append(("- holds" if ran["rs"]["non2xx"] == 0 else
                      "- **does not hold**")
                     + f": no error status during graceful restarts in "
                     f"{r['id']} ({ran['rs']['graceful']} restarts; {seen})")
    lines += memory_target(rows, "daemon_rss", "daemon RSS",
                           "total of the daemon processes")
    # RSS counts the module's code in every process that maps it; private
    # memory is what each daemon costs on its own (bench/NOTES.md).
    lines += memory_target(rows, "daemon_private", "daemon private memory",
                           "Private_Clean + Private_Dirty, total of the "
                           "daemon processes")
    return lines


def memory_target(rows, key, what, measured):
    """The target line "`what` no higher than C 4.9.4's" over the daemon
    scenarios, from each row's `key` (KiB); none when nothing compared."""
    worse = []
    compared = False
    for r in rows:
        if r["restarts"]:
            # Measured right after the run, old daemons may still be
            # finishing their last requests beside the new ones.
            continue
        ours = r["c"].get("rs", {}).get(key)
        theirs = r["c"].get("c4", {}).get(key)
        if ours and theirs:
            compared = True
            if ours > theirs:
                worse.append(f"{r['id']} {ours / 1024:.1f} vs "
                             f"{theirs / 1024:.1f} MiB")
    if worse:
        return [f"- **does not hold**: {what} no higher than C mod_wsgi "
                f"4.9.4's ({measured}); higher in: " + "; ".join(worse)]
    if compared:
        return [f"- holds: {what} no higher than C mod_wsgi 4.9.4's "
                f"({measured}) in every daemon scenario"]
    return []


def svg_chart(rows, names):
    """Horizontal bars: ours / each other contender."""
    series = [("c4", "#1f77b4", f"vs {names.get('c4', 'C 4.9.4')}"),
              ("c6", "#2ca02c", f"vs {names.get('c6', 'C 6.x')}"),
              ("static", "#999999", "vs static file"),
              ("gunicorn", "#ff7f0e", "vs gunicorn"),
              ("proxy", "#9467bd", "vs Apache + mod_proxy + gunicorn")]
    series = [s for s in series if any(r["ratio"].get(s[0]) for r in rows)]
    bar, gap, left, width = 11, 10, 170, 520
    top = 40
    vmax = max([2.0] + [r["ratio"][k] for r in rows for k, _, _ in series
                        if r["ratio"].get(k)])
    vmax = float(int(vmax * 2 + 1)) / 2
    group = bar * len(series) + gap
    height = top + group * len(rows) + 40
    x = lambda v: left + width * v / vmax
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 60}"'
         f' height="{height}" font-family="sans-serif" font-size="11">',
         '<rect width="100%" height="100%" fill="white"/>',
         f'<text x="{left}" y="14" font-size="13">mod_wsgi_rs requests/s '
         'ratio (median of per-round ratios)</text>']
    lx = left
    for k, color, label in series:
        o.append(f'<rect x="{lx}" y="22" width="10" height="10" '
                 f'fill="{color}"/><text x="{lx + 14}" y="31">{label}</text>')
        lx += 14 + 7 * len(label) + 16
    t = 0.0
    while t <= vmax + 1e-9:
        o.append(f'<line x1="{x(t):.1f}" y1="{top}" x2="{x(t):.1f}" '
                 f'y2="{height - 30}" stroke="#ddd"/>'
                 f'<text x="{x(t):.1f}" y="{height - 16}" '
                 f'text-anchor="middle">{t:.1f}x</text>')
        t += 0.5
    o.append(f'<line x1="{x(1):.1f}" y1="{top}" x2="{x(1):.1f}" '
             f'y2="{height - 30}" stroke="#d62728" stroke-dasharray="4 3"/>')
    for i, r in enumerate(rows):
        y0 = top + i * group
        o.append(f'<text x="{left - 6}" y="{y0 + group / 2:.0f}" '
                 f'text-anchor="end">{r["id"]}</text>')
        for j, (k, color, _) in enumerate(series):
            v = r["ratio"].get(k)
            y = y0 + j * bar
            if v is None:
                continue
            o.append(f'<rect x="{left}" y="{y}" width="{x(v) - left:.1f}" '
                     f'height="{bar - 2}" fill="{color}"/>'
                     f'<text x="{x(v) + 3:.1f}" y="{y + bar - 3}" '
                     f'font-size="9">{v:.2f}</text>')
    o.append("</svg>")
    return "\n".join(o) + "\n"


def machine_info():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
            mem = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    load = os.getloadavg()
    return (f"{os.cpu_count()} CPUs ({model}), {mem} memory, "
            f"{platform.system()} {platform.release()}; load average at "
            f"start {load[0]:.2f}")


def render(cfg, rows, contenders, info, started, finished, chart_name):
    names = {c["id"]: c["name"] for c in contenders}
    has = {c["id"] for c in contenders}
    L = []
    L.append(f"# Benchmark {started:%Y-%m-%d %H:%M} UTC"
             + (" (quick smoke run)" if cfg.quick else ""))
    L.append("")
    L.append(f"- Machine: {info['machine']}. {info['shared']}")
    L.append(f"- Duration: {started:%H:%M}-{finished:%H:%M} UTC; "
             f"{cfg.pairs} rounds per scenario, each contender once per round "
             f"in this order: {', '.join(c['id'] for c in contenders)}; a fresh "
             f"Apache per measurement, {cfg.warmup} s wrk warm-up, then "
             f"{cfg.duration} s measured (wrk 2 threads, --latency).")
    L.append(f"- Apache: {info['apache']}, event MPM: 2 children x 256 "
             "threads from the start (StartServers = ServerLimit 2, "
             "MaxRequestWorkers 512), a listening socket per child "
             "(ListenCoresBucketsRatio, SO_REUSEPORT); `embedded-prefork`: prefork MPM, "
             f"{PREFORK_CHILDREN} children from the start; KeepAlive On, "
             "unlimited keep-alive "
             "requests, no access log, LogLevel warn; the same configuration "
             "for every contender but the LoadModule line (static: no WSGI "
             "lines). WSGIApplicationGroup %{GLOBAL}; daemon mode "
             "`WSGIDaemonProcess bench processes=N threads=M "
             "display-name=bench-daemon`; the Django and Flask apps with "
             "`WSGIPythonHome` their venv.")
    if info.get("apps"):
        L.append(f"- Real applications and peers: {info['apps']}; gunicorn "
                 "`-k gthread -w N --threads M --keep-alive 15` (the daemon "
                 "mode's N x M), as www-data; `proxy` is the same Apache with "
                 "`ProxyPass / http://127.0.0.1:PORT/` (mod_proxy_http) in "
                 "front of that gunicorn.")
    L.append(f"- Python: {info['python']}; wrk: {info['wrk']}.")
    for c in contenders:
        L.append(f"- {c['id']}: {c['name']}: `{c['detail']}`"
                 + (f"; banner `{c['banner']}`" if c.get("banner") else ""))
    for n in info.get("notes", []):
        L.append(f"- {n}")
    L.append("")
    L.append("Scenarios: `hello` 13 bytes, `64k` 64 KiB from one bytes "
             "object, `file-1m` 1 MiB file through wsgi.file_wrapper, "
             "`post-1m` 1 MiB POST read whole by the app (the static "
             "contender cannot take a POST: n/a), all with 16 keep-alive "
             "connections; `hello-c256` the hello with 256 keep-alive "
             "connections; `django` a Django 5.2 page (template, a query of "
             "20 rows from SQLite through the ORM, session, CSRF and common "
             "middleware); `flask` a Flask JSON endpoint (20 items); "
             "`fastapi` the same document from FastAPI (ASGI) and "
             "`fastapi-sleep` a FastAPI endpoint awaiting 10 ms, against "
             "gunicorn's uvicorn workers alone and behind mod_proxy (C "
             "mod_wsgi has no ASGI); "
             "`hello-restarts` the hello for "
             f"{cfg.restart_duration} s with a graceful restart every 5 s "
             "(SIGUSR1 to Apache; SIGHUP to gunicorn). The static contender "
             "serves the same bytes at the same URLs from files; it is the "
             "same server in every mode.")
    L.append("")
    L.append("Ratios are medians of the per-round ratios of requests/s "
             "(ours / theirs; above 1 is faster). Latencies are medians over "
             "the rounds of wrk's p50 / p99, in ms.")
    L.append("")
    L.append(f"![ratios]({chart_name})")
    L.append("")
    L.append(table_md(rows, contenders))
    L.append("")
    L.append("## Targets")
    L.append("")
    L.extend(targets(rows))
    L.append("")
    L.append("## Latency (ms, p50 / p99)")
    L.append("")
    head = "| scenario | " + " | ".join(names[c["id"]] for c in contenders) \
        + " |"
    L.append(head)
    L.append("|---" * (len(contenders) + 1) + "|")
    for r in rows:
        cells = []
        for c in contenders:
            d = r["c"][c["id"]]
            cells.append("n/a" if d["rps"] is None else
                         f"{fmt_ms(d['p50'])} / {fmt_ms(d['p99'])}")
        L.append(f"| {r['id']} | " + " | ".join(cells) + " |")
    L.append("")
    L.append("## Memory after the run (RSS, MiB)")
    L.append("")
    L.append("Median over the rounds of the total RSS of the daemon "
             "processes and of the worker children; in brackets each "
             "process of the last round.")
    L.append("")
    wsgi = [c for c in contenders if c["id"] != "static"]
    L.append("| scenario | " + " | ".join(
        f"{names[c['id']]} daemons" for c in wsgi) + " | " + " | ".join(
        f"{names[c['id']]} workers" for c in contenders) + " |")
    L.append("|---" * (1 + len(wsgi) + len(contenders)) + "|")
    for r in rows:
        cells = []
        for c in wsgi:
            d = r["c"][c["id"]]
            cells.append("-" if not d["daemon_rss"] else
                         f"{fmt_mib(d['daemon_rss'])} ("
                         + " ".join(fmt_mib(k) for k in d["daemon_each"])
                         + ")")
        for c in contenders:
            d = r["c"][c["id"]]
            cells.append("-" if not d["worker_rss"] else
                         f"{fmt_mib(d['worker_rss'])} ("
                         + " ".join(fmt_mib(k) for k in d["worker_each"])
                         + ")")
        L.append(f"| {r['id']} | " + " | ".join(cells) + " |")
    L.append("")
    L.append("Private memory of the daemon processes (MiB, median over "
             "the rounds of the total of Private_Clean + Private_Dirty): "
             "RSS without the pages a daemon shares with Apache's parent "
             "and children, such as the module's code.")
    L.append("")
    L.append("| scenario | " + " | ".join(
        f"{names[c['id']]} daemons" for c in wsgi) + " |")
    L.append("|---" * (1 + len(wsgi)) + "|")
    for r in rows:
        if not any(r["c"][c["id"]].get("daemon_private") for c in wsgi):
            continue
        L.append(f"| {r['id']} | " + " | ".join(
            fmt_mib(r["c"][c["id"]].get("daemon_private")) for c in wsgi)
            + " |")
    L.append("")
    L.append("## Spread over Apache's children (embedded, event MPM)")
    L.append("")
    L.append("The share of the children's CPU time used by the busiest of "
             "the two during each round's measured run (0.50 is an even "
             "spread; near 1.00 one child did all the work, which with a "
             "CPU-bound app means one GIL for the whole run).")
    L.append("")
    L.append("| scenario | " + " | ".join(names[c["id"]] for c in wsgi)
             + " |")
    L.append("|---" * (len(wsgi) + 1) + "|")
    for r in rows:
        if MODES[r["mode"]][0] or MODES[r["mode"]][1] != "event" \
                or r["restarts"]:
            continue
        cells = []
        for c in wsgi:
            shares = [x for x in r["c"][c["id"]]["worker_share"]
                      if x is not None]
            cells.append(" ".join(f"{x:.2f}" for x in shares) or "n/a")
        L.append(f"| {r['id']} | " + " | ".join(cells) + " |")
    L.append("")
    L.append("## Errors and failures")
    L.append("")
    problems = []
    for r in rows:
        for c in contenders:
            d = r["c"][c["id"]]
            if d["non2xx"] or d["sockerr"]:
                problems.append(f"- {r['id']} {names[c['id']]}: "
                                f"{d['non2xx']} non-2xx/3xx responses, "
                                f"{d['sockerr']} socket errors "
                                "(connect/read/write/timeout) over "
                                f"{d['runs'] - d['failed']} runs")
            for f in sorted(set(d["failures"])):
                problems.append(f"- {r['id']} {names[c['id']]}: "
                                f"{d['failures'].count(f)} of {d['runs']} "
                                f"runs failed: {f.splitlines()[0]}")
    L.extend(problems or ["None: every response was 2xx, no socket errors."])
    L.append("")
    L.append("## Per-round ratios (ours / C mod_wsgi 4.9.4)")
    L.append("")
    for r in rows:
        rr = r["rounds"].get("c4") or []
        L.append(f"- {r['id']}: " + (", ".join(f"{v:.2f}" for v in rr)
                                     or "n/a"))
    L.append("")
    return "\n".join(L)


def table_md(rows, contenders):
    names = {c["id"]: c["name"] for c in contenders}
    has = [c["id"] for c in contenders]
    cols = ["scenario"] + [f"{names[i]} req/s" for i in has]
    ratio_cols = [("c4", "ours / C 4.9.4"), ("c6", "ours / C 6.x"),
                  ("static", "ours / static"), ("gunicorn", "ours / gunicorn"),
                  ("proxy", "ours / Apache+proxy+gunicorn")]
    ratio_cols = [(k, n) for k, n in ratio_cols if k in has]
    cols += [n for _, n in ratio_cols]
    if "c4" in has and "static" in has:
        cols.append("C 4.9.4 / static")
    if "rs" in has:
        cols.append("ours p50 / p99 ms")
    if "c4" in has:
        cols.append("C 4.9.4 p50 / p99 ms")
    L = ["| " + " | ".join(cols) + " |", "|---" * len(cols) + "|"]
    for r in rows:
        cells = [r["id"]]
        for i in has:
            d = r["c"][i]
            if d["rps"] is None:
                cells.append("**failed**" if d["applies"] and d["runs"]
                             else "n/a")
            else:
                bad = " (**errors**)" if d["non2xx"] or d["sockerr"] \
                    or d["failed"] else ""
                cells.append(f"{d['rps']:.0f}{bad}")
        for k, _ in ratio_cols:
            v = r["ratio"][k]
            s = fmt_ratio(v)
            if k == "c4" and v is not None and v < 1.0:
                s = f"**{s}**"
            cells.append(s)
        if "c4" in has and "static" in has:
            cells.append(fmt_ratio(r["c4_static"]))
        for i in ("rs", "c4"):
            if i in has:
                d = r["c"][i]
                cells.append("n/a" if d["rps"] is None else
                             f"{fmt_ms(d['p50'])} / {fmt_ms(d['p99'])}")
        L.append("| " + " | ".join(cells) + " |")
    return "\n".join(L)


def update_readme(md_name, table, started, target_lines, info, cfg):
    path = os.path.join(REPO, "README.md")
    with open(path) as f:
        text = f.read()
    start = text.index("## Benchmark\n")
    end = text.find("\n## ", start + 1)
    end = len(text) if end < 0 else end + 1
    section = (
        "## Benchmark\n\n"
        f"Latest run ({started:%Y-%m-%d}, {info['machine_short']}"
        f"{', shared with other work' if info['shared'] else ''}; module "
        f"{info['rs_detail']}; full "
        f"report with latencies, memory and chart: "
        f"[bench/results/{md_name}](bench/results/{md_name})). Requests/s "
        "are medians; ratios are medians of per-round ratios "
        f"({cfg.pairs} rounds of {cfg.duration} s per contender, "
        "alternated):\n\n"
        + table + "\n\nTargets:\n\n" + "\n".join(target_lines) + "\n\n"
        "Run it with `make bench` (installs wrk, Debian's "
        "libapache2-mod-wsgi-py3, PyPI's mod-wsgi into target/bench/venv and "
        "Django, Flask, FastAPI, gunicorn and uvicorn into target/bench/apps-venv; about 45 "
        "minutes on 2 cores; `BENCH_QUICK=1 make bench` is a 3-minute smoke "
        "run). bench/NOTES.md says how it works. On the 2-core machine "
        "these runs use, each fresh server runs at a speed of its own, "
        "12-20% apart between starts of the same module (bench/NOTES.md, "
        "2026-12-07), so the rows where the application's own work "
        "dominates (Django, Flask) land on either side of 1.0x "
        "from one run to the next.\n\n")
    text = text[:start] + section + text[end:]
    with open(path, "w") as f:
        f.write(text)


# ------------------------------------------------------------ main

class Cfg:
    pass


def config_from_env():
    cfg = Cfg()
    cfg.quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    cfg.pairs = int(os.environ.get("BENCH_PAIRS", 2 if cfg.quick else 3))
    cfg.duration = int(os.environ.get("BENCH_DURATION",
                                      2 if cfg.quick else 4))
    cfg.warmup = int(os.environ.get("BENCH_WARMUP", 1))
    cfg.restart_duration = int(os.environ.get("BENCH_RESTART_DURATION",
                                              10 if cfg.quick else 20))
    cfg.port = int(os.environ.get("BENCH_PORT", 18089))
    cfg.only = [s for s in os.environ.get("BENCH_ONLY", "").split(",") if s]
    cfg.contenders = [s for s in
                      os.environ.get("BENCH_CONTENDERS", "").split(",") if s]
    cfg.shared = os.environ.get("BENCH_SHARED", "")
    return cfg


def on_signal(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--module", help="our module (default: make module-path)")
    ap.add_argument("--bench-dir", default=os.path.join(REPO, "target",
                                                        "bench"))
    ap.add_argument("--no-install", action="store_true",
                    help="do not apt-get/pip install anything")
    ap.add_argument("--no-readme", action="store_true",
                    help="do not update README.md's Benchmark section")
    args = ap.parse_args()
    cfg = config_from_env()
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    paths = {"bench": os.path.abspath(args.bench_dir)}
    paths["site"] = os.path.join(paths["bench"], "site")
    paths["apps_venv"] = os.path.join(paths["bench"], "apps-venv")
    os.makedirs(paths["bench"], exist_ok=True)
    os.chmod(paths["bench"], 0o755)
    if not args.no_install:
        install_prerequisites()
    module = os.path.abspath(args.module or build_ours())
    checks = body_checks(make_site(paths["site"]))

    deb_version = out(["dpkg-query", "-W", "-f=${Version}",
                       "libapache2-mod-wsgi-py3"])
    contenders = [
        {"id": "rs", "kind": "module", "name": "mod_wsgi_rs",
         "module": module, "detail": module},
        {"id": "c4", "kind": "module",
         "name": f"C mod_wsgi {deb_version.split('-')[0]} (Debian)",
         "module": DEBIAN_WSGI, "detail": f"{DEBIAN_WSGI}, "
         f"libapache2-mod-wsgi-py3 {deb_version}"},
    ]
    notes = []
    c6_path, c6_version = (None, "not tried") if args.no_install and not \
        os.path.exists(os.path.join(paths["bench"], "venv")) else \
        install_pypi_mod_wsgi(os.path.join(paths["bench"], "venv"))
    if c6_path:
        contenders.append({"id": "c6", "kind": "module",
                           "name": f"C mod_wsgi {c6_version} (PyPI)",
                           "module": c6_path,
                           "detail": f"{c6_path}, pip mod-wsgi {c6_version}"})
    else:
        notes.append(f"C mod_wsgi 6.x from PyPI: {c6_version}; left out.")
    contenders.append({"id": "static", "kind": "static",
                       "name": "static file",
                       "module": None, "detail": "no WSGI module; "
                       "DocumentRoot files"})
    app_versions, why_not = install_app_venv(paths["apps_venv"],
                                             not args.no_install)
    if app_versions:
        gunicorn = f"gunicorn {app_versions['gunicorn']}"
        workers = "gthread; uvicorn's worker for ASGI" + (
            f", uvicorn {app_versions['uvicorn']}"
            if "uvicorn" in app_versions else "")
        contenders.append({"id": "gunicorn", "kind": "gunicorn",
                           "name": gunicorn, "module": None,
                           "detail": f"{gunicorn} ({workers}), no Apache"})
        contenders.append({"id": "proxy", "kind": "proxy",
                           "name": f"Apache + mod_proxy + {gunicorn}",
                           "module": None, "detail": "mod_proxy_http in "
                           f"front of {gunicorn} ({workers})"})
    else:
        notes.append(f"Django, Flask and gunicorn: {why_not}; the real "
                     "applications and the gunicorn peers left out.")
    if cfg.contenders:
        contenders = [c for c in contenders if c["id"] in cfg.contenders]

    scenarios = [(m, WORKLOADS[w]) for m, w in SCENARIOS
                 if WORKLOADS[w]["app"] == "bench" or (
                     app_versions and (WORKLOADS[w]["app"] not in ASGI_APPS
                                       or "fastapi" in app_versions))]
    if cfg.quick:
        scenarios = [s for s in scenarios
                     if f"{s[0]}/{s[1]['id']}" in QUICK_SCENARIOS]
    if cfg.only:
        scenarios = [s for s in scenarios if any(
            o in f"{s[0]}/{s[1]['id']}" for o in cfg.only)]

    info = {
        "machine": machine_info(),
        "machine_short": f"{os.cpu_count()} CPUs",
        "shared": cfg.shared or "",
        "apache": out([APACHE, "-v"]).splitlines()[0]
        .replace("Server version: ", ""),
        "python": sys.version.split()[0] + " (/usr/bin/python3; every "
        "module links the system libpython)",
        "wrk": out(["dpkg-query", "-W", "-f=${Version}", "wrk"]) or "?",
        "apps": ", ".join(f"{n} {v}" for n, v in (app_versions or {}).items()),
        "notes": notes,
    }
    rev = out(["git", "-C", REPO, "rev-parse", "--short", "HEAD"])
    dirty = out(["git", "-C", REPO, "status", "--porcelain", "--", "src"])
    contenders[0]["detail"] += f" (git {rev}{', src/ modified' if dirty else ''})"
    info["rs_detail"] = f"git {rev}{' with uncommitted src/ changes' if dirty else ''}"

    started = datetime.datetime.now(datetime.timezone.utc)
    runs = sum(cfg.pairs for m, w in scenarios for c in contenders
               if applies(c, m, w))
    log(f"{len(scenarios)} scenarios x {cfg.pairs} rounds x "
        f"{len(contenders)} contenders = {runs} measurements")
    results = []
    n = 0
    try:
        for mode, w in scenarios:
            for rnd in range(cfg.pairs):
                for c in contenders:
                    if not applies(c, mode, w):
                        continue
                    n += 1
                    r = measure(c, mode, w, cfg, paths, checks)
                    r["round"] = rnd
                    results.append(r)
                    if r.get("server") and not c.get("banner"):
                        c["banner"] = r["server"]
                    if "failure" in r:
                        log(f"[{n}/{runs}] {mode}/{w['id']} {c['id']}: "
                            f"FAILED: {r['failure'].splitlines()[0]}")
                    else:
                        log(f"[{n}/{runs}] {mode}/{w['id']} {c['id']}: "
                            f"{r['rps']:.0f} req/s p50 {r['p50_us']} us "
                            f"p99 {r['p99_us']} us"
                            + (f" non2xx {r['status']}" if r["status"] else "")
                            + (f" sockerr {r['errors']}" if r["errors"]
                               else ""))
    except KeyboardInterrupt:
        log("interrupted: stopping")
        Server.stop_all()
        if not results:
            return 130
        log("writing a partial report")
        info["notes"].append("Interrupted: partial run.")
    finally:
        Server.stop_all()

    finished = datetime.datetime.now(datetime.timezone.utc)
    info["machine"] += f", at the end {os.getloadavg()[0]:.2f}"
    rows = summarise(scenarios, results, contenders)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    stem = f"{started:%Y-%m-%d}" + ("-quick" if cfg.quick else "")
    if cfg.only or cfg.contenders:
        # Timed: a partial run never overwrites an earlier one of the day.
        stem = f"{started:%Y-%m-%d-%H%M}" + ("-quick" if cfg.quick else "") \
            + "-partial"
    chart = stem + ".svg"
    with open(os.path.join(HERE, "results", chart), "w") as f:
        f.write(svg_chart(rows, {c["id"]: c["name"] for c in contenders}))
    md = render(cfg, rows, contenders, info, started, finished, chart)
    with open(os.path.join(HERE, "results", stem + ".md"), "w") as f:
        f.write(md)
    with open(os.path.join(HERE, "results", stem + ".json"), "w") as f:
        json.dump({"started": started.isoformat(), "info": info,
                   "contenders": contenders, "results": results}, f,
                  indent=1, default=str)
    log(f"report: bench/results/{stem}.md")
    print(table_md(rows, contenders))
    print("\n".join(targets(rows)))
    if not cfg.quick and not args.no_readme and not cfg.only \
            and not cfg.contenders and "Interrupted: partial run." not in \
            info["notes"]:
        update_readme(stem + ".md", table_md(rows, contenders), started,
                      targets(rows), info, cfg)
        log("README.md Benchmark section updated")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        Server.stop_all()
        sys.exit(130)
    finally:
        Server.stop_all()
