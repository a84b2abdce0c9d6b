#!/usr/bin/python3
"""`make bench`: mod_wsgi_rs side by side with C mod_wsgi on the same Apache.

Each contender (mod_wsgi_rs, C mod_wsgi 4.9.4 from Debian, C mod_wsgi 6.x
from PyPI when it builds, and Apache serving the same bytes as static files)
runs in turn on the same port under the same configuration, loaded by wrk
from this machine. For every scenario the contenders are alternated
A, B, C, D, A, B, C, D ... for BENCH_PAIRS rounds; each Apache is started
fresh for one measurement and stopped afterwards. The report gives the
median of the per-round ratios.

Stdlib only; run as root with /usr/bin/python3 (Apache's children run as
www-data). Environment:
  BENCH_QUICK=1      smoke run (~2 minutes): 4 scenarios, 2 rounds, 2 s runs
  BENCH_PAIRS=N      rounds per scenario (default 5, quick 2)
  BENCH_DURATION=S   seconds of each measured wrk run (default 4, quick 2)
  BENCH_WARMUP=S     seconds of wrk warm-up before each run (default 1)
  BENCH_PORT=P       port (default 18089)
  BENCH_ONLY=a,b     only scenarios whose id contains one of these strings
  BENCH_CONTENDERS=  only these contenders (ids: rs, c4, c6, static)
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
import subprocess
import sys
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

# (id, path, expected body, POST body bytes, connections)
WORKLOADS = [
    ("hello", "/hello", "hello", 0, 16),
    ("64k", "/64k", "64k", 0, 16),
    ("file-1m", "/file", "file", 0, 16),
    ("post-1m", "/post", "post", MIB, 16),
    ("hello-c256", "/hello", "hello", 0, 256),
]
MODES = [
    ("embedded", None),
    ("daemon-3x2", (3, 2)),
    ("daemon-1x15", (1, 15)),
]
QUICK_SCENARIOS = ["embedded/hello", "daemon-3x2/hello", "embedded/file-1m",
                   "daemon-3x2/post-1m"]


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


def build_ours():
    log("building mod_wsgi_rs (make)")
    run(["make", "-s", "-C", REPO])
    return out(["make", "-s", "-C", REPO, "--no-print-directory",
                "module-path"]).splitlines()[-1]


# ------------------------------------------------------------ the site

def make_site(site):
    """The app and the static files, world-readable (children are www-data)."""
    os.makedirs(site, exist_ok=True)
    shutil.copyfile(os.path.join(HERE, "apps", "bench.wsgi"),
                    os.path.join(site, "bench.wsgi"))
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
    for name in os.listdir(site):
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

def apache_conf(root, site, port, module, mode_threads):
    user = "User www-data\nGroup www-data\n" if os.geteuid() == 0 else ""
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
LoadModule mpm_event_module {MODULES}/mod_mpm_event.so
LoadModule authz_core_module {MODULES}/mod_authz_core.so
LoadModule mime_module {MODULES}/mod_mime.so
LoadModule alias_module {MODULES}/mod_alias.so
TypesConfig /etc/mime.types
{user}
# Event MPM, two children from the start and never more or fewer, so no
# contender pays for a child (and a Python) started during a run; 256
# threads each, so that even if all 256 keep-alive connections land on one
# child none is closed early for want of a worker (with 2 x 128 wrk saw
# read errors, for the static files too).
StartServers 2
ServerLimit 2
ThreadLimit 256
ThreadsPerChild 256
MaxRequestWorkers 512
MinSpareThreads 32
MaxSpareThreads 512
MaxConnectionsPerChild 0
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
    if module:
        conf += f"""
LoadModule wsgi_module {module}
WSGISocketPrefix "{root}/run/wsgi"
WSGIApplicationGroup %{{GLOBAL}}
"""
        if mode_threads:
            p, t = mode_threads
            conf += (f"WSGIDaemonProcess bench processes={p} threads={t} "
                     "display-name=bench-daemon\nWSGIProcessGroup bench\n")
        conf += f'WSGIScriptAlias / "{site}/bench.wsgi"\n'
    return conf


def proc_stat(pid):
    """(ppid, starttime) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[1]), int(fields[19])


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


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class Apache:
    """One Apache in the foreground in its own session; stop() leaves no
    process behind (it is also called on Ctrl-C and on errors)."""

    live = None  # the one running now, for the signal/exit path

    def __init__(self, root, conf_text, port):
        self.root, self.port = root, port
        for d in ("run", "logs"):
            os.makedirs(os.path.join(root, d), exist_ok=True)
            os.chmod(os.path.join(root, d), 0o755)
        self.conf = os.path.join(root, "httpd.conf")
        with open(self.conf, "w") as f:
            f.write(conf_text)
        self.errlog = os.path.join(root, "logs", "error.log")
        self.proc = None
        self.known = {}

    def start(self, probe):
        if port_busy(self.port):
            raise RuntimeError(f"port {self.port} is already in use "
                               "(set BENCH_PORT=)")
        self.log_offset = os.path.getsize(self.errlog) \
            if os.path.exists(self.errlog) else 0
        err = os.path.join(self.root, "logs", "stderr.log")
        self.stderr_offset = os.path.getsize(err) \
            if os.path.exists(err) else 0
        self.proc = subprocess.Popen(
            [APACHE, "-f", self.conf, "-DFOREGROUND"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.root, "logs", "stderr.log"), "a"),
            start_new_session=True)
        Apache.live = self
        deadline = time.monotonic() + 30
        last = None
        while time.monotonic() < deadline:
            self.known.update(descendants(self.proc.pid))
            if self.proc.poll() is not None:
                raise RuntimeError("apache2 exited at start-up:\n"
                                   + self.stderr_tail() + self.log_tail())
            try:
                status, _, _ = request(self.port, probe, timeout=5)
                if status < 500 or status == 500:
                    self.known.update(descendants(self.proc.pid))
                    return
            except OSError as e:
                last = e
            time.sleep(0.1)
        raise RuntimeError(f"apache2 did not answer in 30 s ({last}):\n"
                           + self.log_tail())

    def stderr_tail(self):
        try:
            with open(os.path.join(self.root, "logs", "stderr.log"),
                      errors="replace") as f:
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

    def processes(self):
        """[(kind, pid, rss KiB)] of Apache's children: 'daemon' for the
        bench-daemon processes, 'worker' for the others."""
        res = []
        for pid in sorted(descendants(self.proc.pid)):
            st = proc_stat(pid)
            if not st or st[0] != self.proc.pid:
                continue
            kind = "daemon" if cmdline(pid).startswith("bench-daemon") \
                else "worker"
            res.append((kind, pid, rss_kib(pid)))
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
                log("apache2 did not stop in 20 s: SIGKILL")
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
        Apache.live = None
        # Daemon sockets and the pid file go with the server.
        for name in os.listdir(os.path.join(self.root, "run")):
            try:
                os.unlink(os.path.join(self.root, "run", name))
            except OSError:
                pass
        wait_port_free(self.port)


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


def measure(contender, mode, workload, cfg, paths, expected):
    """One fresh Apache, one check request, warm-up, one measured run,
    RSS, stop. Returns a dict (with 'failure' when it could not run)."""
    wid, path, body_key, post_bytes, conns = workload
    module = contender["module"]
    threads = dict(MODES)[mode]
    root = os.path.join(paths["bench"], "server")
    ap = Apache(root, apache_conf(root, paths["site"], cfg.port, module,
                                  threads), cfg.port)
    res = {"contender": contender["id"], "mode": mode, "workload": wid}
    try:
        ap.start("/hello")
        body = b"x" * post_bytes if post_bytes else None
        status, headers, got = request(cfg.port, path, body)
        res["server"] = headers.get("Server", "")
        want = expected[body_key]
        if status != 200 or got != want:
            res["failure"] = (f"check request {path}: status {status}, "
                              f"{len(got)} bytes (expected 200, {len(want)} "
                              f"bytes{', same bytes' if status == 200 else ''})")
            res["log"] = ap.new_log_lines()[-3000:]
            return res
        if cfg.warmup > 0:
            wrk(cfg.port, path, conns, cfg.warmup, post_bytes)
        res.update(wrk(cfg.port, path, conns, cfg.duration, post_bytes))
        res["procs"] = ap.processes()
        lines = "\n".join(l for l in ap.new_log_lines().splitlines()
                          if re.search(r"\[[\w-]*:(warn|error|crit|alert|"
                                       r"emerg)\]", l))
        if lines:
            res["log"] = lines[-3000:]
        return res
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        res["failure"] = str(e)[:3000]
        return res
    finally:
        ap.stop()


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
    for mode, workload in scenarios:
        sid = f"{mode}/{workload[0]}"
        row = {"id": sid, "mode": mode, "workload": workload[0], "c": {}}
        by = {}
        for r in results:
            if r["mode"] == mode and r["workload"] == workload[0]:
                by.setdefault(r["contender"], []).append(r)
        for c in contenders:
            runs = by.get(c["id"], [])
            ok = [r for r in runs if "failure" not in r]
            daemons = [sum(k for kind, _, k in r["procs"]
                           if kind == "daemon" and k) for r in ok]
            workers = [sum(k for kind, _, k in r["procs"]
                           if kind == "worker" and k) for r in ok]
            last = ok[-1]["procs"] if ok else []
            row["c"][c["id"]] = {
                "runs": len(runs), "failed": len(runs) - len(ok),
                "failures": [r["failure"] for r in runs if "failure" in r],
                "rps": med([r["rps"] for r in ok]),
                "p50": med([r["p50_us"] for r in ok]),
                "p99": med([r["p99_us"] for r in ok]),
                "non2xx": sum(r["status"] for r in ok),
                "sockerr": sum(r["errors"] for r in ok),
                "daemon_rss": med(daemons) if any(daemons) else None,
                "worker_rss": med(workers) if any(workers) else None,
                "daemon_each": [k for kind, _, k in last if kind == "daemon"],
                "worker_each": [k for kind, _, k in last if kind == "worker"],
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
        for other in ("c4", "c6", "static"):
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
    ]
    for mode, _ in MODES:
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
    worse = []
    compared = False
    for r in rows:
        ours = r["c"].get("rs", {}).get("daemon_rss")
        theirs = r["c"].get("c4", {}).get("daemon_rss")
        if ours and theirs:
            compared = True
            if ours > theirs:
                worse.append(f"{r['id']} {ours / 1024:.1f} vs "
                             f"{theirs / 1024:.1f} MiB")
    if worse:
        lines.append("- **does not hold**: daemon RSS no higher than C "
                     "mod_wsgi 4.9.4's (total of the daemon processes); "
                     "higher in: " + "; ".join(worse))
    elif compared:
        lines.append("- holds: daemon RSS no higher than C mod_wsgi 4.9.4's "
                     "(total of the daemon processes) in every daemon "
                     "scenario")
    return lines


def svg_chart(rows, names):
    """Horizontal bars: ours / C 4.9.4, ours / C 6.x, ours / static."""
    series = [("c4", "#1f77b4", f"vs {names['c4']}"),
              ("c6", "#2ca02c", f"vs {names.get('c6', 'C 6.x')}"),
              ("static", "#999999", "vs static file")]
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
             "MaxRequestWorkers 512), KeepAlive On, unlimited keep-alive "
             "requests, no access log, LogLevel warn; the same configuration "
             "for every contender but the LoadModule line (static: no WSGI "
             "lines). WSGIApplicationGroup %{GLOBAL}; daemon mode "
             "`WSGIDaemonProcess bench processes=N threads=M "
             "display-name=bench-daemon`.")
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
             "connections. The static contender serves the same bytes at "
             "the same URLs from files; it is the same server in every mode.")
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
                  ("static", "ours / static")]
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
                cells.append("n/a" if i == "static" and
                             r["workload"] == "post-1m" else "**failed**")
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
        "libapache2-mod-wsgi-py3 and PyPI's mod-wsgi into target/bench/venv; "
        "about 30 minutes on 2 cores; `BENCH_QUICK=1 make bench` is a "
        "2-minute smoke run). bench/NOTES.md says how it works.\n\n")
    text = text[:start] + section + text[end:]
    with open(path, "w") as f:
        f.write(text)


# ------------------------------------------------------------ main

class Cfg:
    pass


def config_from_env():
    cfg = Cfg()
    cfg.quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    cfg.pairs = int(os.environ.get("BENCH_PAIRS", 2 if cfg.quick else 5))
    cfg.duration = int(os.environ.get("BENCH_DURATION",
                                      2 if cfg.quick else 4))
    cfg.warmup = int(os.environ.get("BENCH_WARMUP", 1))
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
    os.makedirs(paths["bench"], exist_ok=True)
    os.chmod(paths["bench"], 0o755)
    if not args.no_install:
        install_prerequisites()
    module = os.path.abspath(args.module or build_ours())
    file_bytes = make_site(paths["site"])
    expected = {"hello": HELLO, "64k": BODY_64K, "file": file_bytes,
                "post": str(MIB).encode()}

    deb_version = out(["dpkg-query", "-W", "-f=${Version}",
                       "libapache2-mod-wsgi-py3"])
    contenders = [
        {"id": "rs", "name": "mod_wsgi_rs", "module": module,
         "detail": module},
        {"id": "c4", "name": f"C mod_wsgi {deb_version.split('-')[0]} (Debian)",
         "module": DEBIAN_WSGI, "detail": f"{DEBIAN_WSGI}, "
         f"libapache2-mod-wsgi-py3 {deb_version}"},
    ]
    notes = []
    c6_path, c6_version = (None, "not tried") if args.no_install and not \
        os.path.exists(os.path.join(paths["bench"], "venv")) else \
        install_pypi_mod_wsgi(os.path.join(paths["bench"], "venv"))
    if c6_path:
        contenders.append({"id": "c6", "name": f"C mod_wsgi {c6_version} "
                           "(PyPI)", "module": c6_path,
                           "detail": f"{c6_path}, pip mod-wsgi {c6_version}"})
    else:
        notes.append(f"C mod_wsgi 6.x from PyPI: {c6_version}; left out.")
    contenders.append({"id": "static", "name": "static file",
                       "module": None, "detail": "no WSGI module; "
                       "DocumentRoot files"})
    if cfg.contenders:
        contenders = [c for c in contenders if c["id"] in cfg.contenders]

    scenarios = [(m, w) for m, _ in MODES for w in WORKLOADS]
    if cfg.quick:
        scenarios = [s for s in scenarios
                     if f"{s[0]}/{s[1][0]}" in QUICK_SCENARIOS]
    if cfg.only:
        scenarios = [s for s in scenarios if any(
            o in f"{s[0]}/{s[1][0]}" for o in cfg.only)]

    info = {
        "machine": machine_info(),
        "machine_short": f"{os.cpu_count()} CPUs",
        "shared": cfg.shared or "",
        "apache": out([APACHE, "-v"]).splitlines()[0]
        .replace("Server version: ", ""),
        "python": sys.version.split()[0] + " (/usr/bin/python3; every "
        "module links the system libpython)",
        "wrk": out(["dpkg-query", "-W", "-f=${Version}", "wrk"]) or "?",
        "notes": notes,
    }
    rev = out(["git", "-C", REPO, "rev-parse", "--short", "HEAD"])
    dirty = out(["git", "-C", REPO, "status", "--porcelain", "--", "src"])
    contenders[0]["detail"] += f" (git {rev}{', src/ modified' if dirty else ''})"
    info["rs_detail"] = f"git {rev}{' with uncommitted src/ changes' if dirty else ''}"

    started = datetime.datetime.now(datetime.timezone.utc)
    runs = sum(cfg.pairs for _, w in scenarios for c in contenders
               if not (c["id"] == "static" and w[3]))
    log(f"{len(scenarios)} scenarios x {cfg.pairs} rounds x "
        f"{len(contenders)} contenders = {runs} measurements")
    results = []
    n = 0
    try:
        for mode, workload in scenarios:
            for rnd in range(cfg.pairs):
                for c in contenders:
                    if c["id"] == "static" and workload[3]:
                        continue  # a static file takes no POST
                    n += 1
                    r = measure(c, mode, workload, cfg, paths, expected)
                    r["round"] = rnd
                    results.append(r)
                    if r.get("server") and not c.get("banner"):
                        c["banner"] = r["server"]
                    if "failure" in r:
                        log(f"[{n}/{runs}] {mode}/{workload[0]} {c['id']}: "
                            f"FAILED: {r['failure'].splitlines()[0]}")
                    else:
                        log(f"[{n}/{runs}] {mode}/{workload[0]} {c['id']}: "
                            f"{r['rps']:.0f} req/s p50 {r['p50_us']} us "
                            f"p99 {r['p99_us']} us"
                            + (f" non2xx {r['status']}" if r["status"] else "")
                            + (f" sockerr {r['errors']}" if r["errors"]
                               else ""))
    except KeyboardInterrupt:
        log("interrupted: stopping")
        if Apache.live:
            Apache.live.stop()
        if not results:
            return 130
        log("writing a partial report")
        info["notes"].append("Interrupted: partial run.")
    finally:
        if Apache.live:
            Apache.live.stop()

    finished = datetime.datetime.now(datetime.timezone.utc)
    info["machine"] += f", at the end {os.getloadavg()[0]:.2f}"
    rows = summarise(scenarios, results, contenders)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    stem = f"{started:%Y-%m-%d}" + ("-quick" if cfg.quick else "")
    if cfg.only or cfg.contenders:
        stem += "-partial"
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
        if Apache.live:
            Apache.live.stop()
        sys.exit(130)
    finally:
        if Apache.live:
            Apache.live.stop()
