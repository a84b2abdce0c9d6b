//! Differential test against C mod_wsgi 6.1.1 through `mod_wsgi-express`.
//!
//! PyPI's mod-wsgi 6.1.1 is installed (and its C module built with apxs)
//! into a cached virtualenv. For each option set below,
//! `mod_wsgi-express setup-server` generates a server root (httpd.conf,
//! apachectl, handler.wsgi, ...), and the server is run twice, one run after
//! the other, each in a fresh temporary directory with fresh ports:
//!
//! 1. as generated, with C mod_wsgi 6.1.1;
//! 2. with the `LoadModule wsgi_module` line of httpd.conf pointed at our
//!    module (`MOD_WSGI_RS_SO`, see `common::module_path`), nothing else
//!    changed.
//!
//! Each run is started with the generated `apachectl start` and stopped
//! with `apachectl stop` (a guard stops it, and kills what is left, even
//! when the test fails). The same requests are sent to both runs with curl
//! (a real client that speaks Basic and Digest auth, TLS and gzip), and
//! what a client sees is compared: statuses, headers (all but `Date`),
//! bodies, plus the lines the applications write to the error log
//! (print(), sys.stderr, wsgi.errors) and the names the daemon processes
//! show in ps. Every difference of a set is collected and the test of that
//! set fails listing all of them.
//!
//! What must differ between the two runs is normalized; each normalization
//! says why next to it (`Run::normalize`, `normalize_log_line`,
//! `observe_headers`).
//!
//! Environment knobs:
//! - `MOD_WSGI_RS_EXPRESS_SECOND=c`: the second run uses C mod_wsgi too
//!   (checks the harness itself: every set must pass C against C).
//! - `MOD_WSGI_RS_EXPRESS_DUMP=DIR`: write what each run showed (every
//!   observation, the application log lines, the whole error log) to
//!   `DIR/<set>.c.txt` and `DIR/<set>.second.txt`.
//! - `MOD_WSGI_RS_KEEP_TMP`: keep every run's directory (site, server
//!   root, logs) under /tmp.

mod common;

use common::venv::{PYTHON, ensure_venv};
use common::{group_members, module_path, pick_port, pid_alive};
use regex::Regex;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The cached virtualenv (under the target dir, see `common::venv`).
const VENV_NAME: &str = "test-venv-express";
/// What it holds; a change here rebuilds it.
const REQUIREMENTS: &[&str] = &["mod-wsgi==6.1.1"];

/// The host name given with `--server-name` (resolved to 127.0.0.1 by curl).
const SERVER_NAME: &str = "wsgi.test";

/// The LD_LIBRARY_PATH the servers get (see `Run::start`): harmless, no
/// such directory.
const LD_LIBRARY_PATH: &str = "/usr/lib/mod_wsgi_rs-express-test/no-such-dir";

const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

// ------------------------------------------------------------ the site

/// The applications and static files (tests/apps/express/), written into
/// each run's `site/` directory.
const SITE_FILES: &[(&str, &str)] = &[
    ("app.wsgi", include_str!("apps/express/app.wsgi")),
    (
        "auth_user.wsgi",
        include_str!("apps/express/auth_user.wsgi"),
    ),
    (
        "auth_group.wsgi",
        include_str!("apps/express/auth_group.wsgi"),
    ),
    (
        "host_access.wsgi",
        include_str!("apps/express/host_access.wsgi"),
    ),
    ("extra.wsgi", include_str!("apps/express/extra.wsgi")),
    (
        "pylib/express_helper.py",
        include_str!("apps/express/pylib/express_helper.py"),
    ),
    (
        "pylib/express_entry.py",
        include_str!("apps/express/pylib/express_entry.py"),
    ),
    (
        "static/hello.txt",
        include_str!("apps/express/static/hello.txt"),
    ),
    (
        "static/style.css",
        include_str!("apps/express/static/style.css"),
    ),
    (
        "docroot/index.html",
        include_str!("apps/express/docroot/index.html"),
    ),
    (
        "docroot/page.txt",
        include_str!("apps/express/docroot/page.txt"),
    ),
    ("work/marker.txt", "the --working-directory of the daemon\n"),
    ("rewrite.conf", include_str!("apps/express/rewrite.conf")),
    ("envvars", include_str!("apps/express/envvars")),
    ("service.py", include_str!("apps/express/service.py")),
    (
        "docroot/.htaccess",
        include_str!("apps/express/docroot/.htaccess"),
    ),
];

/// The file given with `--include-file` (written as `site/extra.conf`):
/// more WSGI directives after the generated ones. `{site}` is replaced by
/// the run's site directory.
const INCLUDE_FILE: &str = "\
# Included with --include-file by tests/express.rs.
WSGIDaemonProcess express-extra threads=2 python-path={site}/pylib
WSGIScriptAlias /extra {site}/extra.wsgi process-group=express-extra application-group=extra-app
WSGIImportScript {site}/extra.wsgi process-group=express-extra application-group=extra-app
SetEnv EXPRESS_EXTRA from-include-file
<Directory {site}>
    <Files extra.wsgi>
        Require all granted
    </Files>
</Directory>
";

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", p.display()));
}

/// Writes `text` at `dir/rel`, parents 0755, the file 0644 (www-data reads it).
fn write_file(dir: &Path, rel: &str, text: &str) -> PathBuf {
    let full = dir.join(rel);
    if !dir.is_dir() {
        fs::create_dir_all(dir).unwrap();
        chmod(dir, 0o755);
    }
    let mut cur = dir.to_path_buf();
    for comp in Path::new(rel)
        .parent()
        .into_iter()
        .flat_map(|p| p.components())
    {
        cur.push(comp);
        fs::create_dir_all(&cur).unwrap();
        chmod(&cur, 0o755);
    }
    fs::write(&full, text).unwrap_or_else(|e| panic!("write {}: {e}", full.display()));
    chmod(&full, 0o644);
    full
}

fn temp_dir(prefix: &str) -> tempfile::TempDir {
    let td = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .expect("create temp dir");
    chmod(td.path(), 0o755);
    td
}

// ------------------------------------------------------------ venv, modules

fn express_venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| ensure_venv(VENV_NAME, REQUIREMENTS))
}

fn express_bin() -> PathBuf {
    express_venv().join("bin/mod_wsgi-express")
}

/// The C module that pip built (`mod_wsgi-express module-location`).
fn c_module() -> &'static Path {
    static C: OnceLock<PathBuf> = OnceLock::new();
    C.get_or_init(|| {
        let out = Command::new(express_bin())
            .arg("module-location")
            .output()
            .expect("mod_wsgi-express module-location");
        assert!(out.status.success(), "module-location: {out:?}");
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        assert!(p.is_file(), "C mod_wsgi not found at {}", p.display());
        p
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Module {
    /// C mod_wsgi 6.1.1, as generated.
    C,
    /// C mod_wsgi 6.1.1 again, for checking the harness.
    CAgain,
    /// Ours: the generated configuration with our LoadModule line.
    Ours,
}

impl Module {
    fn label(self) -> &'static str {
        match self {
            Module::C => "C mod_wsgi 6.1.1",
            Module::CAgain => "C mod_wsgi 6.1.1 (second run)",
            Module::Ours => "mod_wsgi_rs",
        }
    }
    fn short(self) -> &'static str {
        match self {
            Module::C => "C",
            Module::CAgain => "C again",
            Module::Ours => "ours",
        }
    }
}

/// What the second run of a set uses: ours, or C under
/// MOD_WSGI_RS_EXPRESS_SECOND=c.
fn second_module() -> Module {
    match std::env::var("MOD_WSGI_RS_EXPRESS_SECOND") {
        Ok(v) if v.eq_ignore_ascii_case("c") => Module::CAgain,
        _ => Module::Ours,
    }
}

/// Self-signed certificate for SERVER_NAME, made with python3-cryptography.
/// Made once per set and shared by both runs, so the SSL_SERVER_* variables
/// are the same.
fn make_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let cert = dir.join("server.crt");
    let key = dir.join("server.key");
    let script = r#"
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
name, cert_path, key_path = sys.argv[1:4]
key = ec.generate_private_key(ec.SECP256R1())
subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                     x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mod_wsgi_rs tests")])
start = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(4242)
        .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=36500))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
open(cert_path, "wb").write(cert.public_bytes(serialization.Encoding.PEM))
open(key_path, "wb").write(key.private_bytes(serialization.Encoding.PEM,
    serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
"#;
    let out = Command::new(PYTHON)
        .args(["-c", script, SERVER_NAME])
        .arg(&cert)
        .arg(&key)
        .output()
        .expect("python3 (cryptography) for the certificate");
    assert!(
        out.status.success(),
        "making the certificate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    chmod(&cert, 0o644);
    chmod(&key, 0o600);
    (cert, key)
}

// ------------------------------------------------------------ option sets

/// One mod_wsgi-express configuration and the requests it gets.
struct OptionSet {
    name: &'static str,
    /// Options after `setup-server <site>/app.wsgi --server-root R --host
    /// 127.0.0.1 --port P --user www-data --group www-data`. Replaced:
    /// `{site}` (the run's site dir), `{shared}` (a dir both runs share),
    /// `{https_port}`, `{cert}`, `{key}`.
    options: &'static [&'static str],
    /// Wants a second port for --https-port and a certificate.
    https: bool,
    /// Requests sent (and other observations made) on the running server.
    exercise: fn(&Run, &mut Observations),
}

/// `processes`/`threads`, `python-path`, `working-directory`,
/// `callable-object`, `log-level`: the daemon process group and what the
/// application sees of it.
const DAEMON: OptionSet = OptionSet {
    name: "daemon",
    options: &[
        "--processes",
        "2",
        "--threads",
        "3",
        "--python-path",
        "{site}/pylib",
        "--working-directory",
        "{site}/work",
        "--callable-object",
        "express_app",
        "--log-level",
        "info",
    ],
    https: false,
    exercise: exercise_daemon,
};

fn exercise_daemon(run: &Run, obs: &mut Observations) {
    obs.get_each(run, &["/env", "/keys", "/sys", "/nothing/here?x=1&y=%20z"]);
    obs.request(
        run,
        Req::get("/echo")
            .method("POST")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(b"a=1&b=two&c=%C3%A9"),
    );
    let big: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    obs.request(
        run,
        Req::get("/echo")
            .method("PUT")
            .header("Content-Type", "application/octet-stream")
            .body(&big),
    );
    obs.request(run, Req::get("/env").method("HEAD"));
    obs.request(run, Req::get("/log?from=daemon"));
    obs.request(run, Req::get("/status?404"));
    obs.request(run, Req::get("/status?410"));
    obs.request(run, Req::get("/error"));
    obs.request(run, Req::get("/binary"));
    obs.daemon_processes(run);
}

/// `url-alias` (static files), `document-root`, `mount-point`.
const STATIC_MOUNT: OptionSet = OptionSet {
    name: "static_mount",
    options: &[
        "--url-alias",
        "/static",
        "{site}/static",
        "--url-alias",
        "/hello-file",
        "{site}/static/hello.txt",
        "--document-root",
        "{site}/docroot",
        "--mount-point",
        "/app",
    ],
    https: false,
    exercise: exercise_static_mount,
};

fn exercise_static_mount(run: &Run, obs: &mut Observations) {
    obs.get_each(
        run,
        &[
            "/static/hello.txt",
            "/static/style.css",
            "/static/missing.txt",
            "/static/",
            "/hello-file",
            "/page.txt",
            "/index.html",
            "/",
            "/app/env",
            "/app",
            "/app/",
            "/app/deeper/path?q=1",
            "/elsewhere/env",
            "/appendix",
        ],
    );
    obs.request(run, Req::get("/static/hello.txt").method("HEAD"));
}

/// `auth-user-script` with `auth-type Basic`, `auth-group-script` with
/// `auth-group`.
const AUTH_BASIC: OptionSet = OptionSet {
    name: "auth_basic_group",
    options: &[
        "--auth-user-script",
        "{site}/auth_user.wsgi",
        "--auth-type",
        "Basic",
        "--auth-group-script",
        "{site}/auth_group.wsgi",
        "--auth-group",
        "editors",
    ],
    https: false,
    exercise: exercise_auth_basic,
};

fn exercise_auth_basic(run: &Run, obs: &mut Observations) {
    obs.request(run, Req::get("/env"));
    obs.request(run, Req::get("/env").basic("alice", "wonderland"));
    obs.request(run, Req::get("/env").basic("alice", "wrong"));
    obs.request(run, Req::get("/env").basic("bob", "builder"));
    obs.request(run, Req::get("/env").basic("carol", "singer"));
    obs.request(run, Req::get("/env").basic("mallory", "x"));
    obs.request(
        run,
        Req::get("/log?from=basic").basic("alice", "wonderland"),
    );
}

/// `auth-user-script` with `auth-type Digest`.
const AUTH_DIGEST: OptionSet = OptionSet {
    name: "auth_digest",
    options: &[
        "--auth-user-script",
        "{site}/auth_user.wsgi",
        "--auth-type",
        "Digest",
    ],
    https: false,
    exercise: exercise_auth_digest,
};

fn exercise_auth_digest(run: &Run, obs: &mut Observations) {
    obs.request(run, Req::get("/env"));
    obs.request(run, Req::get("/env").digest("alice", "wonderland"));
    obs.request(run, Req::get("/env").digest("alice", "wrong"));
    obs.request(run, Req::get("/env").digest("mallory", "x"));
}

/// `host-access-script`.
const HOST_ACCESS: OptionSet = OptionSet {
    name: "host_access",
    options: &["--host-access-script", "{site}/host_access.wsgi"],
    https: false,
    exercise: exercise_host_access,
};

fn exercise_host_access(run: &Run, obs: &mut Observations) {
    obs.request(run, Req::get("/env"));
    obs.request(run, Req::get("/forbidden/env"));
    obs.request(run, Req::get("/forbidden"));
    obs.request(run, Req::get("/log?from=access"));
}

/// `include-file` with more WSGI directives (a second daemon process
/// group and WSGIScriptAlias, WSGIImportScript, SetEnv).
const INCLUDE: OptionSet = OptionSet {
    name: "include_file",
    options: &["--include-file", "{site}/extra.conf"],
    https: false,
    exercise: exercise_include,
};

fn exercise_include(run: &Run, obs: &mut Observations) {
    obs.request(run, Req::get("/extra"));
    obs.request(run, Req::get("/extra/sub/path"));
    obs.request(run, Req::get("/env"));
    obs.daemon_processes(run);
}

/// `https-port` with a certificate, `ssl-environment`, `server-name`.
const HTTPS: OptionSet = OptionSet {
    name: "https_server_name",
    options: &[
        "--https-port",
        "{https_port}",
        "--ssl-certificate-file",
        "{cert}",
        "--ssl-certificate-key-file",
        "{key}",
        "--ssl-environment",
        "--server-name",
        SERVER_NAME,
    ],
    https: true,
    exercise: exercise_https,
};

fn exercise_https(run: &Run, obs: &mut Observations) {
    obs.request(run, Req::get("/env").https());
    obs.request(run, Req::get("/keys").https());
    obs.request(run, Req::get("/env").named_host());
    obs.request(
        run,
        Req::get("/echo")
            .https()
            .method("POST")
            .header("Content-Type", "text/plain")
            .body(b"over TLS"),
    );
    // Not the --server-name: the generated _default_ virtual host denies.
    obs.request(run, Req::get("/env"));
}

/// `compress-responses`, `server-metrics`.
const COMPRESS_METRICS: OptionSet = OptionSet {
    name: "compress_metrics",
    options: &["--compress-responses", "--server-metrics"],
    https: false,
    exercise: exercise_compress_metrics,
};

fn exercise_compress_metrics(run: &Run, obs: &mut Observations) {
    obs.request(run, Req::get("/text").compressed());
    obs.request(run, Req::get("/text"));
    obs.request(run, Req::get("/json").compressed());
    obs.request(run, Req::get("/binary").compressed());
    obs.request(run, Req::get("/metrics"));
}

/// `reload-on-changes` (with `python-path` for the module that changes).
const RELOAD: OptionSet = OptionSet {
    name: "reload_on_changes",
    options: &["--reload-on-changes", "--python-path", "{site}/pylib"],
    https: false,
    exercise: exercise_reload,
};

fn exercise_reload(run: &Run, obs: &mut Observations) {
    // C answers at once; a server that hangs is not waited for long.
    let first = obs.request(run, Req::get("/reload").max_time(10));
    if first != b"helper=helper-v1\n" {
        // Nothing to reload; do not wait for it.
        obs.note(
            "reload after the change",
            "skipped: /reload did not answer helper-v1".into(),
        );
        return;
    }
    // The monitor thread compares modification times once a second; make
    // sure the new one differs even on a coarse clock.
    let helper = run.site.join("pylib/express_helper.py");
    std::thread::sleep(Duration::from_millis(1100));
    write_file(
        &run.site,
        "pylib/express_helper.py",
        "VALUE = \"helper-v2\"\n",
    );
    let _ = Command::new("touch")
        .arg("-d")
        .arg("+2 seconds")
        .arg(&helper)
        .status();
    // Wait for the restarted process to answer with the new code.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut outcome = "timed out waiting for helper-v2".to_string();
    while Instant::now() < deadline {
        let r = run.fetch(&Req::get("/reload").max_time(5));
        if r.body == b"helper=helper-v2\n" {
            outcome = "reloaded: helper=helper-v2".to_string();
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    obs.note("reload after the change", outcome);
    obs.request(run, Req::get("/reload"));
}

// ------------------------------------------------------------ requests

#[derive(Clone, Copy, PartialEq, Eq)]
enum Auth {
    None,
    Basic,
    Digest,
}

struct Req {
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    auth: Auth,
    user: String,
    https: bool,
    /// Address the server by --server-name rather than 127.0.0.1.
    named: bool,
    compressed: bool,
    /// curl's --max-time, seconds.
    max_time: u32,
}

impl Req {
    fn get(path: &str) -> Req {
        Req {
            method: "GET",
            path: path.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            auth: Auth::None,
            user: String::new(),
            https: false,
            named: false,
            compressed: false,
            max_time: 60,
        }
    }
    fn method(mut self, m: &'static str) -> Req {
        self.method = m;
        self
    }
    fn header(mut self, k: &str, v: &str) -> Req {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
    fn body(mut self, b: &[u8]) -> Req {
        self.body = b.to_vec();
        self
    }
    fn basic(mut self, user: &str, pass: &str) -> Req {
        self.auth = Auth::Basic;
        self.user = format!("{user}:{pass}");
        self
    }
    fn digest(mut self, user: &str, pass: &str) -> Req {
        self.auth = Auth::Digest;
        self.user = format!("{user}:{pass}");
        self
    }
    fn https(mut self) -> Req {
        self.https = true;
        self.named = true;
        self
    }
    fn named_host(mut self) -> Req {
        self.named = true;
        self
    }
    fn max_time(mut self, secs: u32) -> Req {
        self.max_time = secs;
        self
    }
    fn compressed(mut self) -> Req {
        self.compressed = true;
        self
    }
    fn label(&self) -> String {
        let mut l = format!("{} {}", self.method, self.path);
        if self.https {
            l.push_str(" (https)");
        } else if self.named {
            l.push_str(&format!(" (Host {SERVER_NAME})"));
        }
        match self.auth {
            Auth::None => {}
            Auth::Basic => l.push_str(&format!(" (basic {})", self.user)),
            Auth::Digest => l.push_str(&format!(" (digest {})", self.user)),
        }
        if self.compressed {
            l.push_str(" (gzip)");
        }
        if !self.body.is_empty() {
            l.push_str(&format!(" ({} bytes)", self.body.len()));
        }
        l
    }
}

struct Fetched {
    /// Status line's code, or None on a transport error.
    status: Option<u16>,
    /// (lower-case name, value) of the last response's header block.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    error: String,
}

// ------------------------------------------------------------ a run

/// One generated server: `dir/site` (the applications), `dir/root` (the
/// --server-root), its ports, and the running Apache (stopped on drop).
struct Run {
    module: Module,
    dir: PathBuf,
    site: PathBuf,
    root: PathBuf,
    port: u16,
    https_port: Option<u16>,
    cert: Option<PathBuf>,
    started: bool,
    start_error: String,
    tmp_dir: Option<tempfile::TempDir>,
    /// `--debug-mode`: apachectl runs the server in the foreground
    /// (`httpd -X`), as this child of the test.
    debug_mode: bool,
    foreground: Option<std::process::Child>,
}

impl Run {
    /// Writes the site, runs `mod_wsgi-express setup-server`, and for our
    /// module rewrites the LoadModule line. Does not start anything.
    fn setup(
        set: &OptionSet,
        module: Module,
        shared: &Path,
        tls: Option<&(PathBuf, PathBuf)>,
    ) -> Run {
        let tmp = temp_dir(&format!("mwsgi-express-{}-", set.name));
        let dir = tmp.path().to_path_buf();
        let site = dir.join("site");
        for (rel, text) in SITE_FILES {
            write_file(&site, rel, text);
        }
        let site_str = site.display().to_string();
        write_file(
            &site,
            "extra.conf",
            &INCLUDE_FILE.replace("{site}", &site_str),
        );
        let root = dir.join("root");
        let port = pick_port();
        let https_port = set.https.then(pick_port);
        let mut args: Vec<String> = vec!["setup-server".into()];
        // The script is the entry point unless the set names its own.
        if !set.options.contains(&"--entry-point") {
            args.push(site.join("app.wsgi").display().to_string());
        }
        args.extend([
            "--server-root".into(),
            root.display().to_string(),
            "--host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--user".into(),
            "www-data".into(),
            "--group".into(),
            "www-data".into(),
        ]);
        for opt in set.options {
            let mut o = opt
                .replace("{site}", &site.display().to_string())
                .replace("{shared}", &shared.display().to_string());
            if let Some(p) = https_port {
                o = o.replace("{https_port}", &p.to_string());
            }
            if let Some((cert, key)) = tls {
                o = o
                    .replace("{cert}", &cert.display().to_string())
                    .replace("{key}", &key.display().to_string());
            }
            args.push(o);
        }
        // The working directory defaults to where setup-server runs.
        let out = Command::new(express_bin())
            .args(&args)
            .current_dir(&site)
            .output()
            .expect("running mod_wsgi-express setup-server");
        assert!(
            out.status.success(),
            "mod_wsgi-express {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let conf_path = root.join("httpd.conf");
        let conf = fs::read_to_string(&conf_path).expect("generated httpd.conf");
        let load = Regex::new(r"(?m)^LoadModule wsgi_module .*$").unwrap();
        assert_eq!(
            load.find_iter(&conf).count(),
            1,
            "one LoadModule wsgi_module line expected in {}",
            conf_path.display()
        );
        assert!(
            conf.contains(&c_module().display().to_string()),
            "generated httpd.conf does not load {}",
            c_module().display()
        );
        if module == Module::Ours {
            let ours = format!("LoadModule wsgi_module '{}'", module_path().display());
            let conf = load.replace(&conf, ours.as_str()).into_owned();
            fs::write(&conf_path, conf).unwrap();
        }
        Run {
            module,
            dir,
            site,
            root,
            port,
            https_port,
            cert: tls.map(|t| t.0.clone()),
            started: false,
            start_error: String::new(),
            tmp_dir: Some(tmp),
            debug_mode: set.options.contains(&"--debug-mode"),
            foreground: None,
        }
    }

    fn label(&self) -> &'static str {
        self.module.label()
    }

    /// The error log: `error_log`, or with `--rotate-logs` the files
    /// rotatelogs wrote (`error_log.<time>`), oldest first.
    fn error_log(&self) -> String {
        let mut names: Vec<PathBuf> = fs::read_dir(&self.root)
            .map(|dir| {
                dir.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n == "error_log" || n.starts_with("error_log."))
                    })
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
            .iter()
            .filter_map(|p| fs::read(p).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .collect()
    }

    fn pid(&self) -> Option<u32> {
        fs::read_to_string(self.root.join("httpd.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// `apachectl start`, then wait until the port answers. A server that
    /// does not come up is recorded (compared as an observation), not a
    /// panic: our module failing to start is a difference to report.
    fn start(&mut self) {
        if self.debug_mode {
            let child = Command::new(self.root.join("apachectl"))
                .arg("start")
                .env("LD_LIBRARY_PATH", LD_LIBRARY_PATH)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("running apachectl start");
            self.foreground = Some(child);
            self.started = true;
            self.wait_answering();
            return;
        }
        let out = Command::new(self.root.join("apachectl"))
            .arg("start")
            // The server's LD_LIBRARY_PATH is what the generated apachectl
            // exports when Python's library is outside the default search
            // path (its SHLIBPATH). Fixed here, so that what the server
            // sees does not depend on how the test is run (cargo sets one).
            .env("LD_LIBRARY_PATH", LD_LIBRARY_PATH)
            .stdin(Stdio::null())
            .output()
            .expect("running apachectl start");
        self.started = true; // from here on, stop() has something to do
        if !out.status.success() {
            self.start_error = format!(
                "apachectl start exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return;
        }
        self.wait_answering();
    }

    /// Waits for the parent's pid file and its port to answer.
    fn wait_answering(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let parent_alive = self.pid().is_some_and(pid_alive);
            if parent_alive && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if Instant::now() >= deadline {
                self.start_error = format!(
                    "server did not answer on port {} within {START_TIMEOUT:?} (parent alive: {parent_alive})",
                    self.port
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every process of this server: the parent's process group (Apache's
    /// daemon mode calls setsid, so the group is the parent's pid) and
    /// anything else whose command line names this server's httpd.conf.
    fn processes(&self) -> Vec<u32> {
        let conf = self.root.join("httpd.conf").display().to_string();
        let mut pids: Vec<u32> = self.pid().map(group_members).unwrap_or_default();
        if let Ok(rd) = fs::read_dir("/proc") {
            for e in rd.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                    continue;
                };
                let cmd = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&cmd).contains(&conf) && pid_alive(pid) {
                    pids.push(pid);
                }
            }
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// `apachectl stop`, wait for every process to go, SIGKILL what stays.
    /// Returns a problem description if something had to be killed.
    fn stop(&mut self) -> Option<String> {
        if !self.started {
            return None;
        }
        self.started = false;
        let _ = Command::new(self.root.join("apachectl"))
            .arg("stop")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            // A foreground server is our child: reap it once it exits.
            if let Some(child) = self.foreground.as_mut() {
                let _ = child.try_wait();
            }
            let left = self.processes();
            if left.is_empty() {
                return None;
            }
            if Instant::now() >= deadline {
                for pid in &left {
                    let _ = Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                }
                std::thread::sleep(Duration::from_millis(200));
                return Some(format!(
                    "{} ({}): processes {left:?} still there {STOP_TIMEOUT:?} after apachectl stop; killed",
                    self.label(),
                    self.root.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Replace what must differ between two runs of one option set.
    fn normalize(&self, text: &str) -> String {
        // Each run has its own temporary directory.
        let mut t = text.replace(&self.dir.display().to_string(), "{RUN}");
        // ... and its own ports (they appear in SERVER_PORT, HTTP_HOST, the
        // daemon process group name "127.0.0.1:PORT", the AuthName).
        if let Some(p) = self.https_port {
            t = t.replace(&p.to_string(), "{HTTPS_PORT}");
        }
        t.replace(&self.port.to_string(), "{PORT}")
    }

    fn url(&self, req: &Req) -> String {
        let (scheme, port) = if req.https {
            ("https", self.https_port.expect("set has no https port"))
        } else {
            ("http", self.port)
        };
        let host = if req.named { SERVER_NAME } else { "127.0.0.1" };
        format!("{scheme}://{host}:{port}{}", req.path)
    }

    /// One request with curl.
    fn fetch(&self, req: &Req) -> Fetched {
        let n = FETCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let body_file = self.dir.join(format!("curl-{n}.body"));
        let head_file = self.dir.join(format!("curl-{n}.head"));
        let mut cmd = Command::new("curl");
        cmd.args([
            "-sS",
            "--http1.1",
            "--max-time",
            &req.max_time.to_string(),
            "--globoff",
            "--noproxy",
            "*",
        ])
        .arg("-o")
        .arg(&body_file)
        .arg("-D")
        .arg(&head_file);
        if req.method == "HEAD" {
            cmd.arg("--head");
        } else if req.method != "GET" {
            cmd.args(["-X", req.method]);
        }
        for (k, v) in &req.headers {
            cmd.arg("-H").arg(format!("{k}: {v}"));
        }
        if !req.body.is_empty() {
            let data_file = self.dir.join(format!("curl-{n}.data"));
            fs::write(&data_file, &req.body).unwrap();
            cmd.arg("--data-binary")
                .arg(format!("@{}", data_file.display()));
            // No "Expect: 100-continue" round trip: one response per request.
            cmd.args(["-H", "Expect:"]);
        }
        match req.auth {
            Auth::None => {}
            Auth::Basic => {
                cmd.args(["--basic", "--user", &req.user]);
            }
            Auth::Digest => {
                cmd.args(["--digest", "--user", &req.user]);
            }
        }
        if req.compressed {
            cmd.arg("--compressed");
        }
        if req.named {
            let port = if req.https {
                self.https_port.unwrap()
            } else {
                self.port
            };
            cmd.arg("--resolve")
                .arg(format!("{SERVER_NAME}:{port}:127.0.0.1"));
        }
        if req.https {
            cmd.arg("--cacert")
                .arg(self.cert.as_ref().expect("no certificate"));
        }
        cmd.arg(self.url(req));
        let out = cmd.output().expect("running curl");
        let head = fs::read_to_string(&head_file).unwrap_or_default();
        // --head writes the head into -o as well: a HEAD response has no body.
        let body = if req.method == "HEAD" {
            Vec::new()
        } else {
            fs::read(&body_file).unwrap_or_default()
        };
        let _ = fs::remove_file(&head_file);
        let _ = fs::remove_file(&body_file);
        // -D holds every response of the exchange (Digest's 401 first):
        // the last block is the answer.
        let last = head
            .split("\r\n\r\n")
            .filter(|b| b.starts_with("HTTP/"))
            .last()
            .unwrap_or("");
        let mut lines = last.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok());
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let error = if out.status.success() {
            String::new()
        } else {
            format!(
                "curl exited with {}: {}",
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stderr).trim()
            )
        };
        Fetched {
            status: if out.status.success() { status } else { None },
            headers,
            body,
            error,
        }
    }
}

static FETCHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(problem) = self.stop() {
            eprintln!("[express] {problem}");
        }
    }
}

// ------------------------------------------------------------ observations

/// What one run showed: (label, normalized text), in order.
#[derive(Default)]
struct Observations {
    items: Vec<(String, String)>,
}

impl Observations {
    fn note(&mut self, label: &str, text: String) {
        self.items.push((label.to_string(), text));
    }

    /// Sends the request, records what came back; returns the body.
    /// A GET of each path, in order.
    fn get_each(&mut self, run: &Run, paths: &[&str]) {
        for path in paths {
            self.request(run, Req::get(path));
        }
    }

    fn request(&mut self, run: &Run, req: Req) -> Vec<u8> {
        let r = run.fetch(&req);
        let mut text = String::new();
        match r.status {
            Some(s) => text.push_str(&format!("status {s}\n")),
            None => text.push_str(&format!("no response: {}\n", r.error)),
        }
        for (k, v) in observe_headers(&r.headers) {
            text.push_str(&format!("{k}: {v}\n"));
        }
        text.push('\n');
        match std::str::from_utf8(&r.body) {
            Ok(s) => text.push_str(s),
            Err(_) => text.push_str(&format!(
                "<{} bytes, not UTF-8, fnv1a {:016x}>",
                r.body.len(),
                fnv1a(&r.body)
            )),
        }
        self.items
            .push((req.label(), mask_digest(&run.normalize(&text))));
        r.body
    }

    /// The names of the daemon processes, as ps shows them: express gives
    /// each group a display-name, and --processes says how many there are.
    /// The Apache parent and its MPM children keep the parent's command
    /// line; anything else is counted by its first word.
    fn daemon_processes(&mut self, run: &Run) {
        // Daemon processes start as the server does; give them a moment.
        std::thread::sleep(Duration::from_millis(500));
        let parent = run.pid();
        let cmdline = |pid: u32| {
            let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&raw)
                .replace('\0', " ")
                .trim()
                .to_string()
        };
        let parent_cmd = parent.map(cmdline).unwrap_or_default();
        let mut names: Vec<String> = run
            .processes()
            .into_iter()
            .filter(|&p| Some(p) != parent)
            .map(cmdline)
            .filter(|c| *c != parent_cmd)
            .map(|c| c.split_whitespace().next().unwrap_or("").to_string())
            .collect();
        names.sort();
        let text = format!("{} process(es)\n{}\n", names.len(), names.join("\n"));
        self.items
            .push(("processes other than Apache's".into(), run.normalize(&text)));
    }
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

/// Headers compared: all but `Date` (the time of the response), sorted by
/// name. Values that change from one server start to the next are masked:
/// `ETag` and `Last-Modified` of static files (each run writes its files
/// anew: other inode, other time). Only their presence is compared.
fn observe_headers(headers: &[(String, String)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = headers
        .iter()
        // The framing differs on purpose (docs/environ-differences.md): a
        // response complete in one piece gets a Content-Length from us,
        // C flushes before the end and answers chunked. The bodies are
        // compared byte for byte.
        .filter(|(k, _)| k != "date" && k != "content-length" && k != "transfer-encoding")
        .map(|(k, val)| {
            let val = match k.as_str() {
                "etag" | "last-modified" => "<varies>".to_string(),
                _ => val.clone(),
            };
            (k.clone(), val)
        })
        .collect();
    v.sort();
    v
}

/// Digest authentication's random parts, wherever they show (the
/// challenge, Authentication-Info, HTTP_AUTHORIZATION in the environ): the
/// server's nonce (time and a per-start secret), the client's cnonce and
/// what is computed from them. The other parameters stay compared.
fn mask_digest(text: &str) -> String {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| Regex::new(r#"\b(nonce|cnonce|response|rspauth)="[^"]*""#).unwrap());
    re.replace_all(text, "$1=\"<varies>\"").into_owned()
}

/// The applications' lines in the error log: print() (stdout, stderr),
/// wsgi.errors, and the express reloader's "monitor (pid=N)" messages.
/// Each line keeps its module:level tag and its client, without the
/// timestamp, the pid/tid and the client's port (which change with every
/// run and connection). Sorted: with several processes and threads, the
/// order in which lines of different processes reach the log is not fixed.
fn app_log_lines(run: &Run) -> Vec<String> {
    let mut v: Vec<String> = run
        .error_log()
        .lines()
        .filter(|l| l.contains("express-app:") || l.contains("monitor (pid="))
        .filter(|l| !is_traceback_body(l))
        .map(|l| run.normalize(&normalize_log_line(l)))
        .collect();
    v.sort();
    v
}

/// A line inside a logged traceback ("  File ...", the source line under
/// it): we log an application's whole traceback where C mod_wsgi 6.1.1
/// logs only its last line (docs/environ-differences.md), so these are
/// left out; the exception line itself is compared.
fn is_traceback_body(line: &str) -> bool {
    line.rsplit("] ")
        .next()
        .is_some_and(|text| text.starts_with("  "))
}

fn normalize_log_line(line: &str) -> String {
    static RES: OnceLock<[(Regex, &'static str); 5]> = OnceLock::new();
    let res = RES.get_or_init(|| {
        [
            // "[Thu Dec 03 06:24:16.455426 2026] ": when.
            (Regex::new(r"^\[[^\]]*\] ").unwrap(), ""),
            // "[pid 15367:tid 140...] ": which process and thread.
            (Regex::new(r"\[pid \d+(:tid \d+)?\] ").unwrap(), ""),
            // "[client 127.0.0.1:54970] ": the client's ephemeral port.
            (
                Regex::new(r"\[(client|remote) ([^\]]*):\d+\]").unwrap(),
                "[$1 $2]",
            ),
            // "monitor (pid=15367):" from the express reloader, "(pid 123)".
            (Regex::new(r"pid=\d+").unwrap(), "pid=N"),
            (Regex::new(r"\(pid \d+\)").unwrap(), "(pid N)"),
        ]
    });
    let mut s = line.to_string();
    for (re, rep) in res {
        s = re.replace_all(&s, *rep).into_owned();
    }
    s
}

/// httpd.conf as generated, with what differs between two runs of a set
/// normalized: the LoadModule line (the module under test), the paths and
/// ports. Two runs of a set must have generated the same configuration.
fn generated_conf(run: &Run) -> String {
    let conf = fs::read_to_string(run.root.join("httpd.conf")).unwrap();
    let load = Regex::new(r"(?m)^LoadModule wsgi_module .*$").unwrap();
    let conf = load.replace(&conf, "LoadModule wsgi_module {MODULE}");
    run.normalize(&conf.replace("WSGIRestrictEmbedded Off", "WSGIRestrictEmbedded On"))
}

// ------------------------------------------------------------ comparing

/// Everything one run showed: observations, app log lines, config.
struct Outcome {
    module: Module,
    label: &'static str,
    start_error: String,
    items: Vec<(String, String)>,
    log: Vec<String>,
    conf: String,
    stop_problem: Option<String>,
    error_log: String,
}

fn run_once(
    set: &OptionSet,
    module: Module,
    shared: &Path,
    tls: Option<&(PathBuf, PathBuf)>,
) -> Outcome {
    let mut run = Run::setup(set, module, shared, tls);
    run.start();
    let mut obs = Observations::default();
    if run.start_error.is_empty() {
        (set.exercise)(&run, &mut obs);
    }
    let stop_problem = run.stop();
    if std::env::var_os("MOD_WSGI_RS_KEEP_TMP").is_some()
        && let Some(td) = run.tmp_dir.take()
    {
        eprintln!("[express] {}: kept {}", run.label(), td.keep().display());
    }
    let outcome = Outcome {
        module,
        label: run.label(),
        start_error: run.normalize(&run.start_error),
        items: obs.items,
        log: app_log_lines(&run),
        conf: generated_conf(&run),
        stop_problem,
        error_log: run.error_log(),
    };
    drop(run);
    outcome
}

/// Lines only in `a`, lines only in `b` (multiset difference, order kept).
fn line_diff(a: &str, b: &str) -> (Vec<String>, Vec<String>) {
    let mut count: BTreeMap<&str, i64> = BTreeMap::new();
    for l in b.lines() {
        *count.entry(l).or_default() += 1;
    }
    let mut only_a = Vec::new();
    for l in a.lines() {
        let c = count.entry(l).or_default();
        if *c > 0 {
            *c -= 1;
        } else {
            only_a.push(l.to_string());
        }
    }
    let mut count: BTreeMap<&str, i64> = BTreeMap::new();
    for l in a.lines() {
        *count.entry(l).or_default() += 1;
    }
    let mut only_b = Vec::new();
    for l in b.lines() {
        let c = count.entry(l).or_default();
        if *c > 0 {
            *c -= 1;
        } else {
            only_b.push(l.to_string());
        }
    }
    (only_a, only_b)
}

fn describe(a_label: &str, a: &str, b_label: &str, b: &str) -> String {
    let (only_a, only_b) = line_diff(a, b);
    let mut s = String::new();
    if only_a.is_empty() && only_b.is_empty() {
        s.push_str("    (same lines, different order)\n");
    }
    for l in only_a.iter().take(40) {
        s.push_str(&format!("    {a_label:>8} | {}\n", shorten(l)));
    }
    for l in only_b.iter().take(40) {
        s.push_str(&format!("    {b_label:>8} | {}\n", shorten(l)));
    }
    s
}

fn shorten(l: &str) -> String {
    if l.chars().count() > 300 {
        format!("{}...", l.chars().take(300).collect::<String>())
    } else {
        l.to_string()
    }
}

/// The differences between two outcomes, one entry per thing that differs.
fn compare(c: &Outcome, other: &Outcome) -> Vec<String> {
    let (cl, ol) = (c.module.short(), other.module.short());
    let mut diffs = Vec::new();
    if c.start_error != other.start_error {
        diffs.push(format!(
            "server start: {cl}: {:?}; {ol}: {:?}",
            if c.start_error.is_empty() {
                "started"
            } else {
                &c.start_error
            },
            if other.start_error.is_empty() {
                "started"
            } else {
                &other.start_error
            },
        ));
    }
    let n = c.items.len().max(other.items.len());
    for i in 0..n {
        match (c.items.get(i), other.items.get(i)) {
            (Some((label, a)), Some((_, b))) if a != b => {
                diffs.push(format!("{label}:\n{}", describe(cl, a, ol, b)));
            }
            (Some((label, _)), None) => diffs.push(format!("{label}: not observed with {ol}")),
            (None, Some((label, _))) => diffs.push(format!("{label}: not observed with {cl}")),
            _ => {}
        }
    }
    let (a, b) = (c.log.join("\n"), other.log.join("\n"));
    if a != b {
        diffs.push(format!(
            "application lines in the error log:\n{}",
            describe(cl, &a, ol, &b)
        ));
    }
    for (label, problem) in [(cl, &c.stop_problem), (ol, &other.stop_problem)] {
        if let Some(p) = problem {
            diffs.push(format!("stopping ({label}): {p}"));
        }
    }
    diffs
}

/// `MOD_WSGI_RS_EXPRESS_DUMP=DIR`: what each run showed, for reading.
fn dump_outcome(dir: &Path, set: &str, which: &str, o: &Outcome) {
    let mut s = format!("# {set}: {}\nstart: {:?}\n", o.label, o.start_error);
    for (label, text) in &o.items {
        s.push_str(&format!("\n===== {label}\n{text}"));
    }
    s.push_str("\n===== application lines in the error log\n");
    s.push_str(&o.log.join("\n"));
    s.push_str("\n\n===== error log\n");
    s.push_str(&o.error_log);
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(format!("{set}.{which}.txt")), s).unwrap();
}

/// Runs the set with C mod_wsgi 6.1.1, then with our module, and fails
/// listing every difference.
/// Nearly every daemon-process option mod_wsgi-express turns into a
/// `WSGIDaemonProcess` option or a server directive: the timeouts, the
/// limits and the buffers, spare workers, backlogs, sendfile, the switch
/// interval, the process name. The requests of `daemon`, one of them (a
/// 200 kB PUT) over --limit-request-body.
const DAEMON_LIMITS: OptionSet = OptionSet {
    name: "daemon_limits",
    options: &[
        "--processes",
        "2",
        "--threads",
        "4",
        "--max-clients",
        "40",
        "--initial-workers",
        "0.5",
        "--minimum-spare-workers",
        "0.25",
        "--maximum-spare-workers",
        "0.75",
        "--limit-request-body",
        "150000",
        "--maximum-requests",
        "500",
        "--startup-timeout",
        "15",
        "--shutdown-timeout",
        "4",
        "--restart-interval",
        "3600",
        "--cpu-time-limit",
        "900",
        "--graceful-timeout",
        "10",
        "--eviction-timeout",
        "5",
        "--deadlock-timeout",
        "90",
        "--inactivity-timeout",
        "900",
        "--ignore-activity",
        "/ignored",
        "--request-timeout",
        "45",
        "--interrupt-timeout",
        "15",
        "--connect-timeout",
        "12",
        "--socket-timeout",
        "50",
        "--queue-timeout",
        "40",
        "--header-timeout",
        "20",
        "--header-max-timeout",
        "40",
        "--header-min-rate",
        "400",
        "--body-timeout",
        "20",
        "--body-max-timeout",
        "40",
        "--body-min-rate",
        "400",
        "--server-backlog",
        "300",
        "--daemon-backlog",
        "150",
        "--send-buffer-size",
        "131072",
        "--receive-buffer-size",
        "131072",
        "--header-buffer-size",
        "65536",
        "--response-buffer-size",
        "262144",
        "--response-socket-timeout",
        "30",
        "--enable-sendfile",
        "--keep-alive-timeout",
        "3",
        "--switch-interval",
        "0.002",
        "--process-name",
        "express-limits",
        "--python-path",
        "{site}/pylib",
    ],
    https: false,
    exercise: exercise_daemon,
};

/// `--embedded-mode`: the application in Apache's children, no daemon
/// process group; under the prefork MPM.
const EMBEDDED: OptionSet = OptionSet {
    name: "embedded_mode",
    options: &[
        "--embedded-mode",
        "--server-mpm",
        "prefork",
        "--python-path",
        "{site}/pylib",
    ],
    https: false,
    exercise: exercise_basic,
};

/// Requests that suit any configuration: the environ, keys, sys, a
/// POST, HEAD, a log line, a 404 and an error.
fn exercise_basic(run: &Run, obs: &mut Observations) {
    obs.get_each(run, &["/env", "/keys", "/sys", "/nothing/here?x=1"]);
    obs.request(
        run,
        Req::get("/echo")
            .method("POST")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(b"a=1&b=two"),
    );
    obs.request(run, Req::get("/env").method("HEAD"));
    obs.request(run, Req::get("/log?from=embedded"));
    obs.request(run, Req::get("/status?404"));
    obs.request(run, Req::get("/error"));
}

/// What reaches the application from the client and the server's
/// environment: trusted proxy headers, `--setenv`, `--passenv`,
/// `--locale`, `--server-alias`, `--allow-localhost`, chunked request
/// bodies, HEAD not mapped to GET, error responses left to Apache.
const PROXY_ENV: OptionSet = OptionSet {
    name: "proxy_env",
    options: &[
        "--trust-proxy-header",
        "X-Forwarded-For",
        "--trust-proxy-header",
        "X-Forwarded-Proto",
        "--trust-proxy-header",
        "X-Forwarded-Host",
        "--trust-proxy",
        "127.0.0.1",
        "--setenv",
        "EXPRESS_EXTRA",
        "from-setenv",
        "--passenv",
        "LANG",
        "--locale",
        "C.UTF-8",
        "--server-alias",
        "alias.test",
        "--allow-localhost",
        "--chunked-request",
        "--map-head-to-get",
        "Off",
        "--error-override",
    ],
    https: false,
    exercise: exercise_proxy_env,
};

fn exercise_proxy_env(run: &Run, obs: &mut Observations) {
    obs.request(run, Req::get("/env"));
    obs.request(
        run,
        Req::get("/env")
            .header("X-Forwarded-For", "203.0.113.7, 127.0.0.1")
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "proxied.test"),
    );
    obs.request(run, Req::get("/sys"));
    obs.request(run, Req::get("/env").method("HEAD"));
    obs.request(
        run,
        Req::get("/echo")
            .method("POST")
            .header("Content-Type", "application/octet-stream")
            .header("Transfer-Encoding", "chunked")
            .body(b"chunked body bytes"),
    );
    obs.request(run, Req::get("/status?404"));
    obs.request(run, Req::get("/status?500"));
    obs.request(run, Req::get("/error"));
}

/// Python's own settings and the process around it: `--python-eggs`,
/// `--python-warnings`, `--orphan-interpreter`, `--working-directory`, a
/// `--process-group` and `--application-group` of our naming, and an
/// access log.
const PYTHON_SETTINGS: OptionSet = OptionSet {
    name: "python_settings",
    options: &[
        "--python-eggs",
        "{site}/work",
        "--python-warnings",
        "ignore::DeprecationWarning",
        "--orphan-interpreter",
        "--working-directory",
        "{site}/work",
        "--process-group",
        "express-named",
        "--application-group",
        "express-app-group",
        "--access-log",
        "--python-path",
        "{site}/pylib",
    ],
    https: false,
    exercise: exercise_daemon,
};

/// A document root with its own features: a directory index,
/// `.htaccess` overrides, an error document, rewrite rules, and a WSGI
/// handler script for one extension (`--add-handler`).
const DOCROOT_HANDLERS: OptionSet = OptionSet {
    name: "docroot_handlers",
    options: &[
        "--document-root",
        "{site}/docroot",
        "--directory-index",
        "index.html",
        "--allow-override",
        "FileInfo",
        "--error-document",
        "404",
        "/status?404",
        "--rewrite-rules",
        "{site}/rewrite.conf",
        "--add-handler",
        ".txt",
        "{site}/app.wsgi",
    ],
    https: false,
    exercise: exercise_docroot_handlers,
};

fn exercise_docroot_handlers(run: &Run, obs: &mut Observations) {
    obs.get_each(
        run,
        &[
            "/",
            "/index.html",
            "/page.txt",
            "/old-env",
            "/env",
            "/status?404",
        ],
    );
    obs.request(run, Req::get("/page.txt").method("HEAD"));
}

/// A `--service-script` (a managed service in a daemon process of its
/// own, which runs until the server stops and then sees SystemExit),
/// `/server-status`, the worker MPM and a `--socket-prefix`.
const SERVICE_STATUS: OptionSet = OptionSet {
    name: "service_status",
    options: &[
        // A short name: C mod_wsgi cuts a display name to the length of
        // Apache's command name, we show it whole.
        "--service-script",
        "svc",
        "{site}/service.py",
        "--server-status",
        "--server-mpm",
        "worker",
        "--socket-prefix",
        "{site}/work",
    ],
    https: false,
    exercise: exercise_service_status,
};

fn exercise_service_status(run: &Run, obs: &mut Observations) {
    obs.request(run, Req::get("/env"));
    obs.request(run, Req::get("/sys"));
    // The page's figures change from one second to the next: its status
    // and headers are what compare.
    obs.request(run, Req::get("/server-status").method("HEAD"));
    obs.daemon_processes(run);
}

/// `--https-only` (plain HTTP redirected to HTTPS) with an HSTS policy.
const HTTPS_ONLY: OptionSet = OptionSet {
    name: "https_only",
    options: &[
        "--https-port",
        "{https_port}",
        "--ssl-certificate-file",
        "{cert}",
        "--ssl-certificate-key-file",
        "{key}",
        "--server-name",
        SERVER_NAME,
        "--https-only",
        "--hsts-policy",
        "max-age=600",
    ],
    https: true,
    exercise: exercise_https_only,
};

fn exercise_https_only(run: &Run, obs: &mut Observations) {
    obs.request(run, Req::get("/env").named_host());
    obs.request(run, Req::get("/env").https());
    obs.request(run, Req::get("/keys?x=1").https());
}

/// The rest of what a generated configuration can hold around the
/// application: telemetry to a local socket with slow-request reports,
/// HTTP/2, CGI, an access log with its own format and the start-up log.
const TELEMETRY_LOGS: OptionSet = OptionSet {
    name: "telemetry_logs",
    options: &[
        "--telemetry-service",
        "unix:{site}/work/telemetry.sock",
        "--slow-requests",
        "5",
        "--http2",
        "--with-cgi",
        "--access-log",
        "--access-log-format",
        "%h %>s %b",
        "--startup-log",
    ],
    https: false,
    exercise: exercise_basic,
};

/// `--rotate-logs` with `--max-log-size`: the error and access logs go
/// through a piped `rotatelogs`, so the daemon processes write to a pipe
/// they inherited from Apache's parent, not to a file.
const ROTATE_LOGS: OptionSet = OptionSet {
    name: "rotate_logs",
    options: &["--rotate-logs", "--max-log-size", "1", "--access-log"],
    https: false,
    exercise: exercise_daemon,
};

/// `--application-type module`: the application is a module on
/// --python-path (`express_entry`, which runs app.wsgi's code), loaded by
/// the handler script mod_wsgi-express writes.
const MODULE_ENTRY: OptionSet = OptionSet {
    name: "module_entry",
    options: &[
        "--application-type",
        "module",
        "--entry-point",
        "express_entry",
        "--python-path",
        "{site}/pylib",
    ],
    https: false,
    exercise: exercise_basic,
};

/// `--application-type static`: no application, a directory of files
/// served by Apache, with a directory listing.
const STATIC_SITE: OptionSet = OptionSet {
    name: "static_site",
    options: &[
        "--application-type",
        "static",
        "--entry-point",
        "{site}/docroot",
        "--directory-listing",
    ],
    https: false,
    exercise: exercise_static_site,
};

fn exercise_static_site(run: &Run, obs: &mut Observations) {
    obs.get_each(run, &["/", "/index.html", "/page.txt", "/missing.txt"]);
    obs.request(run, Req::get("/page.txt").method("HEAD"));
}

/// `--debug-mode` (one process in the foreground, `httpd -X`, the
/// application embedded) with the express handler script's request
/// recorder and profiler: a set of recorder files per request.
const DEBUG_MODE: OptionSet = OptionSet {
    name: "debug_mode",
    options: &[
        "--debug-mode",
        "--enable-recorder",
        "--recorder-directory",
        "{site}/work/recorder",
        "--enable-profiler",
        "--profiler-directory",
        "{site}/work/profiler",
    ],
    https: false,
    exercise: exercise_debug_mode,
};

fn exercise_debug_mode(run: &Run, obs: &mut Observations) {
    for dir in ["work/recorder", "work/profiler"] {
        let d = run.site.join(dir);
        fs::create_dir_all(&d).unwrap();
        chmod(&d, 0o777);
    }
    obs.get_each(run, &["/env", "/keys", "/status?404"]);
    obs.request(run, Req::get("/error"));
    // What the recorder wrote: the kinds of file for each request (the
    // names start with a time and the pid).
    let mut kinds: Vec<String> = fs::read_dir(run.site.join("work/recorder"))
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let name = e.file_name().to_string_lossy().to_string();
                    name.split_once('-')
                        .and_then(|(_, rest)| rest.split_once('-'))
                        .map_or(name.clone(), |(_, tail)| tail.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    kinds.sort();
    obs.items
        .push(("recorder files".into(), kinds.join("\n") + "\n"));
}

/// What surrounds the application in the server: an `--envvars-script`
/// the generated apachectl sources (its variable reaches the
/// application's process), and a `--proxy-mount-point` to a server that
/// is not there (mod_proxy's 503, the application untouched).
const ENVVARS_PROXY: OptionSet = OptionSet {
    name: "envvars_proxy",
    options: &[
        "--envvars-script",
        "{site}/envvars",
        "--proxy-mount-point",
        "/proxied",
        "http://127.0.0.1:9/",
    ],
    https: false,
    exercise: exercise_envvars_proxy,
};

fn exercise_envvars_proxy(run: &Run, obs: &mut Observations) {
    obs.get_each(run, &["/sys", "/env", "/proxied/anything"]);
}

fn check(set: &OptionSet) {
    check_with(set, second_module());
}

fn check_with(set: &OptionSet, second: Module) {
    let shared_tmp = temp_dir(&format!("mwsgi-express-{}-shared-", set.name));
    let shared = shared_tmp.path();
    let tls = set.https.then(|| make_certificate(shared));
    let t0 = Instant::now();
    let c = run_once(set, Module::C, shared, tls.as_ref());
    let t1 = Instant::now();
    let ours = run_once(set, second, shared, tls.as_ref());
    let t2 = Instant::now();
    eprintln!(
        "[express] {}: C run {:.1}s, second run ({}) {:.1}s",
        set.name,
        (t1 - t0).as_secs_f64(),
        ours.label,
        (t2 - t1).as_secs_f64()
    );
    // Same options, same generator: the configurations must be the same.
    // (A harness check, not a module difference.)
    if c.conf != ours.conf {
        panic!(
            "{}: the two runs generated different configurations:\n{}",
            set.name,
            describe("first", &c.conf, "second", &ours.conf)
        );
    }
    // The C run is the reference: it must have worked.
    assert!(
        c.start_error.is_empty(),
        "{}: C mod_wsgi did not start: {}\n{}",
        set.name,
        c.start_error,
        c.error_log
    );
    if let Some(dump) = std::env::var_os("MOD_WSGI_RS_EXPRESS_DUMP") {
        dump_outcome(Path::new(&dump), set.name, "c", &c);
        dump_outcome(Path::new(&dump), set.name, "second", &ours);
    }
    let diffs = compare(&c, &ours);
    if !diffs.is_empty() {
        let wsgi_lines: Vec<&str> = ours
            .error_log
            .lines()
            .filter(|l| l.contains("[wsgi:") && !l.contains("express-app:"))
            .take(30)
            .collect();
        panic!(
            "option set {}: {} difference(s) between {} and {}:\n\n{}\n--- {} module lines in its error log (first 30):\n{}",
            set.name,
            diffs.len(),
            c.label,
            ours.label,
            diffs.join("\n"),
            ours.label,
            wsgi_lines.join("\n")
        );
    }
}

// ------------------------------------------------------------ the tests

/// The harness itself: C against C must show no difference (so what the
/// other tests report comes from the module, not from the normalizations).
/// MOD_WSGI_RS_EXPRESS_SECOND=c does this for every set.
#[test]
fn harness_c_against_c() {
    check_with(&DAEMON, Module::CAgain);
}

#[test]
fn daemon() {
    check(&DAEMON);
}

#[test]
fn rotate_logs() {
    check(&ROTATE_LOGS);
}

#[test]
fn static_mount() {
    check(&STATIC_MOUNT);
}

#[test]
fn auth_basic_group() {
    check(&AUTH_BASIC);
}

#[test]
fn auth_digest() {
    check(&AUTH_DIGEST);
}

#[test]
fn host_access() {
    check(&HOST_ACCESS);
}

#[test]
fn include_file() {
    check(&INCLUDE);
}

#[test]
fn https_server_name() {
    check(&HTTPS);
}

#[test]
fn compress_metrics() {
    check(&COMPRESS_METRICS);
}

#[test]
fn reload_on_changes() {
    check(&RELOAD);
}

#[test]
fn daemon_limits() {
    check(&DAEMON_LIMITS);
}

#[test]
fn embedded_mode() {
    check(&EMBEDDED);
}

#[test]
fn proxy_env() {
    check(&PROXY_ENV);
}

#[test]
fn python_settings() {
    check(&PYTHON_SETTINGS);
}

#[test]
fn docroot_handlers() {
    check(&DOCROOT_HANDLERS);
}

#[test]
fn service_status() {
    check(&SERVICE_STATUS);
}

#[test]
fn https_only() {
    check(&HTTPS_ONLY);
}

#[test]
fn telemetry_logs() {
    check(&TELEMETRY_LOGS);
}

#[test]
fn module_entry() {
    check(&MODULE_ENTRY);
}

#[test]
fn static_site() {
    check(&STATIC_SITE);
}

#[test]
fn debug_mode() {
    check(&DEBUG_MODE);
}

#[test]
fn envvars_proxy() {
    check(&ENVVARS_PROXY);
}
