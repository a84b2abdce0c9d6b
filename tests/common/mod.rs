//! Integration-test harness: starts a private Apache httpd 2.4 per test.
//!
//! Usage from a test file:
//! ```ignore
//! mod common;
//! use common::*;
//!
//! let apache = Apache::builder()
//!     .mpm(Mpm::Prefork)
//!     .file("app.wsgi", "def application(environ, start_response): ...")
//!     .directives("WSGIScriptAlias /app {dir}/app.wsgi")
//!     .start();
//! let r = apache.get("/app");
//! assert_eq!(r.status, 200);
//! ```
//!
//! Every Apache gets its own temp dir under /tmp and its own loopback port,
//! runs in its own process group, and is torn down (SIGTERM, then SIGKILL of
//! the whole group) when the `Apache` value is dropped. A test fails if any
//! process of the group survives the shutdown of the parent.
//!
//! Environment knobs:
//! - `MOD_WSGI_RS_SO`: path of the module to load (default
//!   `<CARGO_MANIFEST_DIR>/target/release/libmod_wsgi_rs.so`).
//! - `MOD_WSGI_RS_APACHE`: the httpd binary; `MOD_WSGI_RS_MODULES_DIR`: its
//!   modules directory. The Makefile exports both from apxs. Unset (or
//!   empty), they are asked of apxs (`$APXS`, else `apxs` on PATH: `SBINDIR`/`TARGET` and
//!   `LIBEXECDIR`), and failing that are Debian's `/usr/sbin/apache2` and
//!   `/usr/lib/apache2/modules`.
//! - `MOD_WSGI_RS_PYTHON`: the interpreter the module was built against,
//!   when not Debian's /usr/bin/python3 (see `python`): every Apache gets
//!   its home as `WSGIPythonHome`.
//! - `MOD_WSGI_RS_KEEP_TMP`: if set, temp dirs of failed tests are kept.

#![allow(dead_code)]

pub mod conf_examples;
pub mod forms;
pub mod load;
pub mod python;
pub mod venv;
pub mod websocket;

use std::collections::HashSet;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Directory holding Apache's loadable modules (for tests that need more
/// modules: `LoadModule rewrite_module {MODULES_DIR}/mod_rewrite.so`).
/// Found at first use (see the module doc); it reads as a `&str` (format
/// arguments, `&str` parameters, `Path::new`).
pub const MODULES_DIR: &ModulesDir = &ModulesDir;

/// The value behind [`MODULES_DIR`].
pub struct ModulesDir;

impl std::ops::Deref for ModulesDir {
    type Target = str;
    fn deref(&self) -> &str {
        static DIR: OnceLock<String> = OnceLock::new();
        DIR.get_or_init(|| {
            env_path("MOD_WSGI_RS_MODULES_DIR").unwrap_or_else(|| {
                apxs_query(&["LIBEXECDIR"])
                    .filter(|dir| Path::new(dir).is_dir())
                    .unwrap_or_else(|| "/usr/lib/apache2/modules".to_string())
            })
        })
    }
}

impl std::fmt::Display for ModulesDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
    }
}

impl AsRef<std::ffi::OsStr> for ModulesDir {
    fn as_ref(&self) -> &std::ffi::OsStr {
        std::ffi::OsStr::new(&**self)
    }
}

impl AsRef<Path> for ModulesDir {
    fn as_ref(&self) -> &Path {
        Path::new(&**self)
    }
}

/// A non-empty environment variable.
fn env_path(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `apxs -q NAME` for each name, the values joined with `/`.
fn apxs_query(names: &[&str]) -> Option<String> {
    let apxs = env_path("APXS").unwrap_or_else(|| "apxs".to_string());
    let mut parts = Vec::new();
    for name in names {
        let out = Command::new(&apxs).args(["-q", name]).output().ok()?;
        let value = String::from_utf8(out.stdout).ok()?.trim().to_string();
        if !out.status.success() || value.is_empty() {
            return None;
        }
        parts.push(value);
    }
    Some(parts.join("/"))
}

const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
const BIND_RETRIES: usize = 5;

/// LoadModule lines for the modules Debian's apache2 has compiled in and
/// the harness's configuration relies on (LogFormat, User, ...), for an
/// httpd that has them as shared modules, as the official image's
/// `--enable-mods-shared=reallyall` build does.
fn builtin_modules_if_shared() -> &'static str {
    static LINES: OnceLock<String> = OnceLock::new();
    LINES.get_or_init(|| {
        let compiled_in = Command::new(apache_binary())
            .arg("-l")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        ["log_config", "logio", "version", "unixd", "watchdog"]
            .iter()
            .filter(|m| !compiled_in.contains(&format!("mod_{m}.c")))
            .filter(|m| Path::new(MODULES_DIR).join(format!("mod_{m}.so")).is_file())
            .map(|m| format!("LoadModule {m}_module {MODULES_DIR}/mod_{m}.so\n"))
            .collect()
    })
}

/// Path of the httpd binary.
pub fn apache_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            let from_apxs = || {
                apxs_query(&["SBINDIR", "TARGET"])
                    .map(PathBuf::from)
                    .filter(|p| p.is_file())
                    .unwrap_or_else(|| PathBuf::from("/usr/sbin/apache2"))
            };
            env_path("MOD_WSGI_RS_APACHE").map_or_else(from_apxs, PathBuf::from)
        })
        .clone()
}

/// Path of the module under test: `$MOD_WSGI_RS_SO` if set, else
/// `<CARGO_MANIFEST_DIR>/target/release/libmod_wsgi_rs.so`. Panics if missing.
pub fn module_path() -> PathBuf {
    let p = match std::env::var_os("MOD_WSGI_RS_SO") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/libmod_wsgi_rs.so"),
    };
    if !p.is_file() {
        panic!(
            "mod_wsgi_rs module not found at {}: build it first with `cargo build --release` \
             (or point MOD_WSGI_RS_SO at the .so)",
            p.display()
        );
    }
    p
}

fn running_as_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

// ---------------------------------------------------------------- MPM

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mpm {
    Event,
    Worker,
    Prefork,
}

impl Mpm {
    pub const ALL: [Mpm; 3] = [Mpm::Event, Mpm::Worker, Mpm::Prefork];

    pub fn name(self) -> &'static str {
        match self {
            Mpm::Event => "event",
            Mpm::Worker => "worker",
            Mpm::Prefork => "prefork",
        }
    }

    fn load_line(self) -> String {
        let n = self.name();
        format!("LoadModule mpm_{n}_module {MODULES_DIR}/mod_mpm_{n}.so")
    }

    fn tuning(self) -> &'static str {
        match self {
            Mpm::Prefork => {
                "StartServers 2\nMinSpareServers 1\nMaxSpareServers 4\n\
                 ServerLimit 10\nMaxRequestWorkers 10\nMaxConnectionsPerChild 0\n"
            }
            // ServerLimit above MaxRequestWorkers/ThreadsPerChild leaves slots
            // for processes that are still finishing during a graceful restart.
            Mpm::Event | Mpm::Worker => {
                "StartServers 2\nServerLimit 4\nThreadLimit 10\nThreadsPerChild 10\n\
                 MaxRequestWorkers 20\nMinSpareThreads 10\nMaxSpareThreads 20\n\
                 MaxConnectionsPerChild 0\n"
            }
        }
    }
}

impl std::fmt::Display for Mpm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

// ---------------------------------------------------------------- ports

pub fn pick_port() -> u16 {
    static GIVEN: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let given = GIVEN.get_or_init(|| Mutex::new(HashSet::new()));
    let mut given = given.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..100 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().unwrap().port();
        drop(l);
        if given.insert(port) {
            return port;
        }
    }
    panic!("could not pick a fresh loopback port");
}

// ------------------------------------------------- key=value answers

/// Test apps answer with "key=value" lines; this reads them back.
pub fn fields(body: &str) -> std::collections::HashMap<String, String> {
    body.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `key` from an app's "key=value" lines (panics naming it when missing).
pub fn field(body: &str, key: &str) -> String {
    let prefix = format!("{key}=");
    body.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{key} missing in:\n{body}"))
        .to_string()
}

/// GET `path`, expecting 200 (else the body and the error log are shown),
/// and return the body.
pub fn ok_body(apache: &Apache, path: &str) -> String {
    let r = apache.get(path);
    assert_eq!(
        r.status,
        200,
        "{path}: {}\n{}",
        r.text(),
        apache.error_log()
    );
    r.text()
}

/// GET `path`, expecting 200, and read the answer's "key=value" lines.
pub fn get_fields(apache: &Apache, path: &str) -> std::collections::HashMap<String, String> {
    fields(&ok_body(apache, path))
}

// ---------------------------------------------------------------- files

/// A temp dir outside the server's own, with `mode` (0755 for Apache's
/// children to traverse, 0777 for them to write in), removed when dropped.
pub fn temp_dir_with_mode(prefix: &str, mode: u32) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .expect("temp dir");
    chmod(dir.path(), mode);
    dir
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {:o} {}: {e}", mode, p.display()));
}

/// Create `dir`/`rel`'s parent dirs (0755 each, including existing ones
/// below `dir`) and return the full path.
fn prepare_parent(dir: &Path, rel: &str) -> PathBuf {
    let rel = rel.trim_start_matches('/');
    assert!(
        !Path::new(rel)
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir)),
        "file path must stay inside the temp dir: {rel}"
    );
    let full = dir.join(rel);
    let mut cur = dir.to_path_buf();
    if let Some(parent) = Path::new(rel).parent() {
        for comp in parent.components() {
            cur.push(comp);
            if !cur.is_dir() {
                fs::create_dir(&cur).unwrap_or_else(|e| panic!("mkdir {}: {e}", cur.display()));
            }
            chmod(&cur, 0o755);
        }
    }
    full
}

fn write_file(dir: &Path, rel: &str, content: &[u8], mode: u32) -> PathBuf {
    let full = prepare_parent(dir, rel);
    fs::write(&full, content).unwrap_or_else(|e| panic!("write {}: {e}", full.display()));
    chmod(&full, mode);
    full
}

fn read_lossy(p: &Path) -> String {
    fs::read(p)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

// ---------------------------------------------------------------- /proc

/// (pid, state, pgrp) for every process visible in /proc.
fn proc_table() -> Vec<(u32, char, u32)> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // comm may contain spaces and parentheses: parse after the last ')'.
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let mut f = stat[close + 1..].split_whitespace();
        let state = f.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let _ppid = f.next();
        let Some(pgrp) = f.next().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        out.push((pid, state, pgrp));
    }
    out
}

/// Live (non-zombie) processes whose process group is `pgid`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    let mut v: Vec<u32> = proc_table()
        .into_iter()
        .filter(|&(_, state, pgrp)| pgrp == pgid && state != 'Z' && state != 'X')
        .map(|(pid, _, _)| pid)
        .collect();
    v.sort_unstable();
    v
}

/// True if `pid` exists and is not a zombie.
/// Polls `f` until it holds or `timeout` passes; its last answer.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

pub fn pid_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next())
                .and_then(|s| s.chars().next())
                .unwrap_or('?');
            state != 'Z' && state != 'X'
        }
        Err(_) => false,
    }
}

fn comm_of(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/cmdline"))
        .map(|s| s.replace('\0', " ").trim().to_string())
        .unwrap_or_default()
}

/// Send `sig` (e.g. "TERM", "KILL", "HUP", "USR1", "WINCH") to a pid;
/// a negative target means a process group.
/// Sends `sig` ("KILL", "USR1", "STOP", ...) to process `pid`.
pub fn signal_pid(pid: u32, sig: &str) -> bool {
    send_signal(i64::from(pid), sig)
}

fn send_signal(target: i64, sig: &str) -> bool {
    Command::new("kill")
        .arg("-s")
        .arg(sig)
        .arg("--")
        .arg(target.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

// ---------------------------------------------------------------- response

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names as ureq reports them, in order, repeated headers kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// All values of a header (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

fn convert_response(r: ureq::Response) -> Response {
    let status = r.status();
    let mut headers = Vec::new();
    let mut seen = HashSet::new();
    for name in r.headers_names() {
        if !seen.insert(name.to_ascii_lowercase()) {
            continue;
        }
        for v in r.all(&name) {
            headers.push((name.clone(), v.to_string()));
        }
    }
    let mut body = Vec::new();
    r.into_reader()
        .read_to_end(&mut body)
        .unwrap_or_else(|e| panic!("reading response body failed: {e}"));
    Response {
        status,
        headers,
        body,
    }
}

// ---------------------------------------------------------------- config test

#[derive(Debug, Clone)]
pub struct ConfigTest {
    pub ok: bool,
    /// stdout + stderr of `apache2 -t`.
    pub output: String,
}

// ---------------------------------------------------------------- builder

pub struct ApacheBuilder {
    mpm: Mpm,
    with_module: bool,
    directives: String,
    files: Vec<(String, Vec<u8>, u32)>,
    env: Vec<(String, String)>,
}

impl ApacheBuilder {
    pub fn mpm(mut self, m: Mpm) -> Self {
        self.mpm = m;
        self
    }
    /// Whether to `LoadModule wsgi_module <module_path()>` (default true).
    pub fn with_module(mut self, yes: bool) -> Self {
        self.with_module = yes;
        self
    }
    /// Appended to httpd.conf (after everything the harness writes).
    /// `{dir}` and `{port}` are replaced by the temp dir and the port.
    pub fn directives(mut self, text: &str) -> Self {
        self.directives.push_str(text);
        self.directives.push('\n');
        self
    }
    /// File written under the temp dir before start (0644, parent dirs 0755).
    pub fn file(self, rel: &str, content: &str) -> Self {
        self.file_bytes(rel, content.as_bytes())
    }
    pub fn file_bytes(mut self, rel: &str, content: &[u8]) -> Self {
        self.files.push((rel.to_string(), content.to_vec(), 0o644));
        self
    }
    /// Like `file`, but with an explicit mode (e.g. 0o755 for a script).
    pub fn file_mode(mut self, rel: &str, content: &str, mode: u32) -> Self {
        self.files
            .push((rel.to_string(), content.as_bytes().to_vec(), mode));
        self
    }
    /// Extra environment variable for the apache2 process.
    pub fn env(mut self, key: &str, val: &str) -> Self {
        self.env.push((key.to_string(), val.to_string()));
        self
    }

    fn make_dir(&self) -> tempfile::TempDir {
        let td = tempfile::Builder::new()
            .prefix("mwsgi-")
            .tempdir_in("/tmp")
            .expect("create temp dir");
        let d = td.path();
        chmod(d, 0o755);
        for sub in ["htdocs", "run"] {
            fs::create_dir_all(d.join(sub)).unwrap();
            chmod(&d.join(sub), 0o755);
        }
        for (rel, content, mode) in &self.files {
            write_file(d, rel, content, *mode);
        }
        td
    }

    fn render_conf(&self, dir: &Path, port: u16) -> String {
        let d = dir.display().to_string();
        let mut c = builtin_modules_if_shared().to_string();
        c.push_str(&format!(
            "# generated by the mod_wsgi_rs test harness\n\
             ServerRoot \"{d}\"\n\
             ServerName 127.0.0.1\n\
             Listen 127.0.0.1:{port}\n\
             PidFile \"{d}/run/httpd.pid\"\n\
             DefaultRuntimeDir \"{d}/run\"\n\
             Mutex file:{d}/run default\n\
             ErrorLog \"{d}/error.log\"\n\
             LogLevel info\n\
             LogFormat \"%h %l %u %t \\\"%r\\\" %>s %b %D\" harness\n\
             CustomLog \"{d}/access.log\" harness\n\
             Timeout 30\n\
             GracefulShutdownTimeout 5\n\
             KeepAlive On\n\
             KeepAliveTimeout 5\n"
        ));
        if running_as_root() {
            c.push_str("User www-data\nGroup www-data\n");
        }
        c.push_str(&self.mpm.load_line());
        c.push('\n');
        for m in [
            "authz_core",
            "authz_host",
            "mime",
            "env",
            "alias",
            "dir",
            "headers",
        ] {
            c.push_str(&format!("LoadModule {m}_module {MODULES_DIR}/mod_{m}.so\n"));
        }
        c.push_str(self.mpm.tuning());
        c.push_str(&format!(
            "TypesConfig /etc/mime.types\n\
             DocumentRoot \"{d}/htdocs\"\n\
             <Directory />\n    AllowOverride None\n    Require all denied\n</Directory>\n\
             <Directory \"{d}\">\n    AllowOverride None\n    Require all granted\n</Directory>\n\
             DirectoryIndex index.html\n"
        ));
        if self.with_module {
            c.push_str(&format!(
                "LoadModule wsgi_module {}\n",
                module_path().display()
            ));
            c.push_str(&python::home_directive());
        }
        c.push_str("# ---- test directives\n");
        c.push_str(
            &self
                .directives
                .replace("{dir}", &d)
                .replace("{port}", &port.to_string()),
        );
        c
    }

    fn write_conf(&self, dir: &Path, port: u16) -> PathBuf {
        let conf = self.render_conf(dir, port);
        write_file(dir, "httpd.conf", conf.as_bytes(), 0o644)
    }

    /// Write everything and run `apache2 -t -f conf`; no server is started.
    pub fn config_test(self) -> ConfigTest {
        let td = self.make_dir();
        let port = pick_port();
        let conf = self.write_conf(td.path(), port);
        let out = Command::new(apache_binary())
            .arg("-t")
            .arg("-f")
            .arg(&conf)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", apache_binary().display()));
        let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
        output.push_str(&String::from_utf8_lossy(&out.stderr));
        ConfigTest {
            ok: out.status.success(),
            output,
        }
    }

    /// Start Apache and wait (up to 30 s) until it answers HTTP.
    pub fn start(self) -> Apache {
        let td = self.make_dir();
        let dir = td.path().to_path_buf();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = pick_port();
            let conf = self.write_conf(&dir, port);
            for f in ["error.log", "access.log", "stdout.log", "stderr.log"] {
                let _ = fs::remove_file(dir.join(f));
            }
            let stdout = fs::File::create(dir.join("stdout.log")).unwrap();
            let stderr = fs::File::create(dir.join("stderr.log")).unwrap();
            let child = Command::new(apache_binary())
                .arg("-f")
                .arg(&conf)
                .arg("-DFOREGROUND")
                .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .stdin(Stdio::null())
                .stdout(stdout)
                .stderr(stderr)
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("spawning {}: {e}", apache_binary().display()));
            let pid = child.id();
            let mut apache = Apache {
                port,
                dir: dir.clone(),
                pgid: pid,
                child: Some(child),
                tempdir: None,
                agent: ureq::AgentBuilder::new()
                    .timeout_connect(Duration::from_secs(10))
                    .timeout(Duration::from_secs(60))
                    .redirects(0)
                    .max_idle_connections(0)
                    .build(),
                logs_shown: false,
            };
            match apache.wait_ready() {
                Ok(()) => {
                    apache.tempdir = Some(td);
                    return apache;
                }
                Err(status) => {
                    let logs = apache.diagnostics();
                    let bind_failure =
                        logs.contains("Address already in use") || logs.contains("could not bind");
                    // Parent already exited; still reap any stragglers.
                    apache.logs_shown = true;
                    apache.shutdown();
                    if bind_failure && attempt < BIND_RETRIES {
                        eprintln!("[harness] port {port} busy, retrying with another port");
                        continue;
                    }
                    let keep = keep_dir(td);
                    panic!(
                        "apache2 exited during startup ({status}); dir {keep}\n{logs}",
                        keep = keep.display()
                    );
                }
            }
        }
    }
}

fn keep_dir(td: tempfile::TempDir) -> PathBuf {
    if std::env::var_os("MOD_WSGI_RS_KEEP_TMP").is_some() {
        td.keep()
    } else {
        td.path().to_path_buf() // removed when td drops here
    }
}

// ---------------------------------------------------------------- Apache

pub struct Apache {
    pub port: u16,
    pub dir: PathBuf,
    pgid: u32,
    child: Option<Child>,
    tempdir: Option<tempfile::TempDir>,
    agent: ureq::Agent,
    logs_shown: bool,
}

impl Apache {
    /// `app/markers` (a test adds `app/markers/.keep`): where test
    /// applications write what they saw.
    pub fn markers(&self) -> PathBuf {
        self.dir.join("app/markers")
    }

    /// Opens `app/markers` to the applications' user (www-data when Apache
    /// starts as root).
    pub fn open_markers(&self) {
        fs::set_permissions(self.markers(), fs::Permissions::from_mode(0o777)).unwrap();
    }

    /// The marker `name` an application writes, waited for up to `timeout`.
    pub fn wait_marker(&self, name: &str, timeout: Duration) -> Option<String> {
        let path = self.markers().join(name);
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(text) = fs::read_to_string(&path) {
                return Some(text);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn builder() -> ApacheBuilder {
        ApacheBuilder {
            mpm: Mpm::Event,
            with_module: true,
            directives: String::new(),
            files: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Pid of the Apache parent process (also its process group id).
    pub fn parent_pid(&self) -> u32 {
        self.pgid
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with('/') {
            format!("http://127.0.0.1:{}{}", self.port, path)
        } else {
            format!("http://127.0.0.1:{}/{}", self.port, path)
        }
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    /// Real HTTP request via ureq. Non-2xx statuses are returned, not errors;
    /// redirects are not followed. Panics on transport errors.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.try_request(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path} failed: {e}"))
    }

    /// Like `request`, but transport errors (connection reset, timeout, bad
    /// response) are returned as `Err(description)`.
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, String> {
        let mut req = self.agent.request(method, &self.url(path));
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let bodyless =
            body.is_empty() && matches!(method, "GET" | "HEAD" | "DELETE" | "OPTIONS" | "TRACE");
        let res = if bodyless {
            req.call()
        } else {
            req.send_bytes(body)
        };
        match res {
            Ok(r) => Ok(convert_response(r)),
            Err(ureq::Error::Status(_, r)) => Ok(convert_response(r)),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Raw TCP exchange: send `bytes`, read until the server closes the
    /// connection. Panics if the server has not closed within 30 s.
    pub fn raw(&self, bytes: &[u8]) -> Vec<u8> {
        let (data, closed) = self.raw_timeout(bytes, Duration::from_secs(30));
        if !closed {
            panic!(
                "raw(): server did not close the connection within 30 s; got {} bytes:\n{}",
                data.len(),
                String::from_utf8_lossy(&data)
            );
        }
        data
    }

    /// Raw TCP exchange with a timeout; returns (data, closed_by_server).
    /// A connection reset counts as closed.
    pub fn raw_timeout(&self, bytes: &[u8], timeout: Duration) -> (Vec<u8>, bool) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))
            .unwrap_or_else(|e| panic!("raw(): connect to port {}: {e}", self.port));
        let deadline = Instant::now() + timeout;
        s.set_write_timeout(Some(timeout)).ok();
        // The server may answer early and close (e.g. 413); keep reading.
        let _ = s.write_all(bytes);
        let mut data = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (data, false);
            }
            s.set_read_timeout(Some(left)).ok();
            match s.read(&mut buf) {
                Ok(0) => return (data, true),
                Ok(n) => data.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return (data, false);
                }
                Err(_) => return (data, true), // reset / aborted
            }
        }
    }

    pub fn error_log(&self) -> String {
        read_lossy(&self.dir.join("error.log"))
    }

    pub fn access_log(&self) -> String {
        read_lossy(&self.dir.join("access.log"))
    }

    /// What apache2 wrote to its stderr (startup errors, Python tracebacks
    /// written before the error log is open, ...).
    pub fn stderr(&self) -> String {
        read_lossy(&self.dir.join("stderr.log"))
    }

    /// Poll the error log until it contains `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.error_log().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every live (non-zombie) process of this Apache: parent and children
    /// (everything in its process group).
    pub fn pids(&self) -> Vec<u32> {
        group_members(self.pgid)
    }

    /// The processes whose command line (a daemon's display-name) starts
    /// with `name`.
    pub fn pids_named(&self, name: &str) -> Vec<u32> {
        self.pids()
            .into_iter()
            .filter(|&p| {
                fs::read_to_string(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.starts_with(name))
            })
            .collect()
    }

    /// Send a signal by name ("HUP", "USR1", "WINCH", "TERM", ...) to the parent.
    pub fn signal(&self, sig: &str) -> bool {
        send_signal(self.pgid as i64, sig)
    }

    /// Graceful restart (SIGUSR1): waits until the error log shows a new
    /// "resuming normal operations" line and Apache answers again.
    /// Note: the error log keeps growing across restarts.
    pub fn graceful_restart(&self) {
        self.restart_with("USR1")
    }

    /// Hard restart (SIGHUP), waiting like `graceful_restart`.
    pub fn restart(&self) {
        self.restart_with("HUP")
    }

    fn restart_with(&self, sig: &str) {
        const MARK: &str = "resuming normal operations";
        let before = self.error_log().matches(MARK).count();
        assert!(self.signal(sig), "could not send SIG{sig} to {}", self.pgid);
        let deadline = Instant::now() + START_TIMEOUT;
        while self.error_log().matches(MARK).count() <= before {
            if Instant::now() >= deadline {
                panic!(
                    "Apache did not come back after SIG{sig}\n{}",
                    self.diagnostics()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.wait_answering(START_TIMEOUT);
    }

    fn wait_answering(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if probe(self.port) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("Apache did not answer within {timeout:?}");
    }

    /// Stop Apache (same as drop).
    pub fn stop(self) {
        drop(self)
    }

    fn diagnostics(&self) -> String {
        format!(
            "---- error.log ({}) ----\n{}\n---- apache2 stderr ----\n{}\n---- apache2 stdout ----\n{}\n----",
            self.dir.join("error.log").display(),
            self.error_log(),
            self.stderr(),
            read_lossy(&self.dir.join("stdout.log")),
        )
    }

    /// Wait until the server answers; Err(exit status) if the parent exited.
    fn wait_ready(&mut self) -> Result<(), ExitStatus> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().expect("try_wait") {
                return Err(st);
            }
            if probe(self.port) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.logs_shown = true;
                let diag = self.diagnostics();
                panic!(
                    "Apache (pid {}) did not answer on port {} within {:?}\n{}",
                    self.pgid, self.port, START_TIMEOUT, diag
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stop everything; returns the list of problems found.
    fn shutdown(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(mut child) = self.child.take()
            && child.try_wait().ok().flatten().is_none()
        {
            send_signal(self.pgid as i64, "TERM");
            let deadline = Instant::now() + STOP_TIMEOUT;
            let mut exited = false;
            while Instant::now() < deadline {
                if child.try_wait().ok().flatten().is_some() {
                    exited = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            if !exited {
                problems.push(format!(
                    "Apache parent {} did not exit within {:?} of SIGTERM; killed the group",
                    self.pgid, STOP_TIMEOUT
                ));
                send_signal(-(self.pgid as i64), "KILL");
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // Anything left in the group is a straggler. Give processes that are
        // already exiting a brief moment before calling them stragglers.
        let grace = Instant::now() + Duration::from_millis(500);
        let mut left = group_members(self.pgid);
        while !left.is_empty() && Instant::now() < grace {
            std::thread::sleep(Duration::from_millis(25));
            left = group_members(self.pgid);
        }
        if !left.is_empty() {
            let desc: Vec<String> = left
                .iter()
                .map(|p| format!("{p} ({})", comm_of(*p)))
                .collect();
            problems.push(format!(
                "processes left behind after Apache exited, killed with SIGKILL: {}",
                desc.join(", ")
            ));
            for _ in 0..50 {
                send_signal(-(self.pgid as i64), "KILL");
                for p in group_members(self.pgid) {
                    send_signal(p as i64, "KILL");
                }
                std::thread::sleep(Duration::from_millis(20));
                if group_members(self.pgid).is_empty() {
                    break;
                }
            }
        }
        problems
    }
}

/// One HTTP exchange that should not reach any handler: `OPTIONS *`.
fn probe(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(
        &(std::net::Ipv4Addr::LOCALHOST, port).into(),
        Duration::from_secs(1),
    ) else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.set_write_timeout(Some(Duration::from_secs(5))).ok();
    if s.write_all(b"OPTIONS * HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let _ = s.shutdown(Shutdown::Write);
    let mut buf = [0u8; 16];
    let mut got = Vec::new();
    while got.len() < 5 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got.starts_with(b"HTTP/")
}

impl Drop for Apache {
    fn drop(&mut self) {
        let problems = self.shutdown();
        let panicking = std::thread::panicking();
        if (panicking || !problems.is_empty()) && !self.logs_shown {
            eprintln!(
                "[harness] Apache on port {} in {}:",
                self.port,
                self.dir.display()
            );
            eprintln!("{}", self.diagnostics());
        }
        if (panicking || !problems.is_empty())
            && let Some(td) = self.tempdir.take()
            && std::env::var_os("MOD_WSGI_RS_KEEP_TMP").is_some()
        {
            eprintln!("[harness] kept {}", td.keep().display());
        }
        if !problems.is_empty() {
            let msg = problems.join("\n");
            if panicking {
                eprintln!("[harness] {msg}");
            } else {
                panic!("[harness] {msg}");
            }
        }
    }
}

/// The contents of file `p` once it exists and is not empty, waited for up
/// to `timeout` (what an application or exit handler writes for a test).
pub fn wait_for_file(p: &Path, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(s) = fs::read_to_string(p)
            && !s.is_empty()
        {
            return Some(s);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
