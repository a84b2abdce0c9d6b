//! `pip install .` and `mod_wsgi_rs-express`, as a user runs them.
//!
//! The package is pip-installed (setup.py runs cargo) into a cached
//! virtualenv of /usr/bin/python3 from a copy of the sources the build
//! reads; their hash is in the virtualenv's stamp, so a change of any of
//! them reinstalls it, and cargo builds in its own target directory beside
//! it (the module the other tests load is never rebuilt under them). Then:
//! - `module-config`'s lines load the installed module into an Apache that
//!   serves from the virtualenv;
//! - `start-server` runs Apache in the foreground with the options users
//!   know from mod_wsgi-express, each checked for its effect, and stops
//!   cleanly, leaving no process, on SIGTERM and on SIGINT;
//! - `setup-server` writes a server root that its `apachectl` checks,
//!   starts and stops;
//! - HTTPS with a certificate made here, checked by curl against it;
//! - `--reload-on-changes` restarts the daemon process after an edit;
//! - bad options: a message naming the problem and exit status 2.

mod common;

use common::venv::{ensure_venv_with_env, venv_dir};
use common::{Apache, field, fields, pick_port, temp_dir_with_mode, wait_until};
use regex::Regex;
use std::collections::HashMap;
use std::fs;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
const RELOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// The files and directories `pip install .` reads (relative to the crate).
const BUILD_INPUTS: &[&str] = &[
    "Cargo.toml",
    "Cargo.lock",
    "build.rs",
    "pyproject.toml",
    "setup.py",
    "README.md",
    "apache-headers",
    "python",
    "src",
];

const APP: &str = include_str!("apps/express_rs/app.wsgi");
const SITE_FILES: &[(&str, &str)] = &[
    ("app.wsgi", APP),
    (
        "pylib/express_rs_helper.py",
        include_str!("apps/express_rs/pylib/express_rs_helper.py"),
    ),
    (
        "static/hello.txt",
        include_str!("apps/express_rs/static/hello.txt"),
    ),
    ("one.txt", include_str!("apps/express_rs/one.txt")),
    (
        "docroot/page.txt",
        include_str!("apps/express_rs/docroot/page.txt"),
    ),
    ("work/.keep", ""),
];

// ------------------------------------------------------------ the install

/// Every file under the build inputs (sorted; Python caches and
/// setuptools' metadata left out).
fn build_files(root: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
        let full = root.join(rel);
        if full.is_dir() {
            let mut entries: Vec<_> = fs::read_dir(&full)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            entries.sort();
            for name in entries {
                let n = name.to_string_lossy();
                if n == "__pycache__" || n.ends_with(".egg-info") {
                    continue;
                }
                walk(root, &rel.join(&name), out);
            }
        } else if full.is_file() {
            out.push(rel.to_path_buf());
        }
    }
    let mut out = Vec::new();
    for input in BUILD_INPUTS {
        walk(root, Path::new(input), &mut out);
    }
    out
}

/// The virtualenv with this source tree pip-installed (built once per
/// change of the sources).
fn installed_venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let files = build_files(crate_dir);
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        for rel in &files {
            rel.hash(&mut hasher);
            fs::read(crate_dir.join(rel)).unwrap().hash(&mut hasher);
        }
        let hash = format!("{:016x}", hasher.finish());
        let venv = venv_dir("test-venv-express-rs");
        let work = venv.parent().unwrap().join("express-rs-build");
        // One copy at a fixed path, file times kept: cargo, in its own
        // target directory beside it, rebuilds only what changed.
        let source = work.join("src");
        let source_hash = work.join("src.hash");
        if fs::read_to_string(&source_hash).ok().as_deref() != Some(hash.as_str()) {
            let _ = fs::remove_dir_all(&source);
            for rel in &files {
                let from = crate_dir.join(rel);
                let to = source.join(rel);
                fs::create_dir_all(to.parent().unwrap()).unwrap();
                fs::copy(&from, &to).unwrap();
                let modified = fs::metadata(&from).unwrap().modified().unwrap();
                fs::File::options()
                    .write(true)
                    .open(&to)
                    .and_then(|f| f.set_modified(modified))
                    .unwrap();
            }
            fs::write(&source_hash, &hash).unwrap();
        }
        let target = work.join("target");
        ensure_venv_with_env(
            "test-venv-express-rs",
            &["--no-cache-dir", source.to_str().unwrap()],
            &[
                ("CARGO_TARGET_DIR", target.to_str().unwrap()),
                ("MOD_WSGI_RS_SOURCE_HASH", &hash),
            ],
        )
    })
}

fn express() -> PathBuf {
    installed_venv().join("bin/mod_wsgi_rs-express")
}

/// Runs `mod_wsgi_rs-express args`, bounded: a command that should have
/// refused but serves is stopped (SIGTERM) after 60 s.
fn run_express(args: &[&str]) -> Output {
    Command::new("timeout")
        .args(["--kill-after=10", "60"])
        .arg(express())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running mod_wsgi_rs-express")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ------------------------------------------------------------ sites and servers

/// A temp dir with the test application and its files (readable by
/// Apache's user); the server root goes in `root/`.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        let dir = temp_dir_with_mode("mwsgi-express-rs-", 0o755);
        for (rel, content) in SITE_FILES {
            let full = dir.path().join(rel);
            for parent in full.parent().unwrap().ancestors() {
                if parent == dir.path() {
                    break;
                }
                fs::create_dir_all(parent).unwrap();
                fs::set_permissions(parent, fs::Permissions::from_mode(0o755)).unwrap();
            }
            fs::write(&full, content).unwrap();
            fs::set_permissions(&full, fs::Permissions::from_mode(0o644)).unwrap();
        }
        Site { dir }
    }

    fn path(&self, rel: &str) -> String {
        self.dir.path().join(rel).to_str().unwrap().to_string()
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }
}

/// Processes whose command line contains `needle` (daemon processes show
/// their display-name there, Apache's the configuration file).
fn processes_with(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if text(&cmdline).replace('\0', " ").contains(needle) && common::pid_alive(pid) {
            pids.push(pid);
        }
    }
    pids
}

/// `mod_wsgi_rs-express start-server` running: Apache in the foreground
/// (the command execs it, so the child is Apache's parent). Dropping it
/// stops it, and kills what is left.
struct Served {
    child: Child,
    port: u16,
    root: PathBuf,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Served {
    /// Starts `start-server` for `site` with `args` (the server root, the
    /// port and the host are given here) and waits until `/` answers.
    fn start(site: &Site, args: &[&str]) -> Served {
        Served::start_ready_at(site, args, "/")
    }

    /// `start`, up when `ready` answers 200.
    fn start_ready_at(site: &Site, args: &[&str], ready: &str) -> Served {
        let port = pick_port();
        let root = site.root();
        let stdout = site.dir.path().join("express.stdout");
        let stderr = site.dir.path().join("express.stderr");
        let port_arg = port.to_string();
        let root_arg = root.to_str().unwrap().to_string();
        let mut full = vec![
            "start-server",
            "--port",
            &port_arg,
            "--host",
            "127.0.0.1",
            "--server-root",
            &root_arg,
        ];
        full.extend_from_slice(args);
        let child = Command::new(express())
            .args(&full)
            .current_dir(site.dir.path())
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout).unwrap())
            .stderr(fs::File::create(&stderr).unwrap())
            .process_group(0)
            .spawn()
            .expect("spawning mod_wsgi_rs-express start-server");
        let mut served = Served {
            child,
            port,
            root,
            stdout,
            stderr,
        };
        let up = wait_until(START_TIMEOUT, || {
            served.exited() || curl(&served.url(ready)).0 == 200
        });
        assert!(
            up && !served.exited(),
            "start-server {full:?} did not come up\n{}",
            served.logs()
        );
        served
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    fn error_log(&self) -> String {
        fs::read_to_string(self.root.join("error_log")).unwrap_or_default()
    }

    fn terminal(&self) -> (String, String) {
        (
            fs::read_to_string(&self.stdout).unwrap_or_default(),
            fs::read_to_string(&self.stderr).unwrap_or_default(),
        )
    }

    fn logs(&self) -> String {
        let (out, err) = self.terminal();
        format!(
            "--- stdout\n{out}--- stderr\n{err}--- error_log\n{}",
            self.error_log()
        )
    }

    /// GET `path`, expecting 200; its key=value lines.
    fn fields(&self, path: &str) -> HashMap<String, String> {
        let (status, body) = curl(&self.url(path));
        assert_eq!(status, 200, "GET {path}: {body}\n{}", self.logs());
        fields(&body)
    }

    /// The processes of this server: Apache's (their command line names
    /// the configuration) and the daemon processes (their display-name).
    fn processes(&self) -> Vec<u32> {
        let mut pids = processes_with(self.root.join("httpd.conf").to_str().unwrap());
        pids.extend(processes_with(&format!("(wsgi:127.0.0.1:{}:", self.port)));
        pids
    }

    /// Sends `signal` to Apache's parent and expects everything gone.
    fn stop_with(mut self, signal: &str) {
        let pid = self.child.id();
        assert!(
            Command::new("kill")
                .args(["-s", signal, &pid.to_string()])
                .status()
                .unwrap()
                .success()
        );
        let gone = wait_until(STOP_TIMEOUT, || {
            self.exited() && self.processes().is_empty()
        });
        assert!(
            gone,
            "SIG{signal} did not stop the server: left {:?}\n{}",
            self.processes(),
            self.logs()
        );
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if !self.exited() {
            let _ = Command::new("kill")
                .args(["-s", "TERM", &self.child.id().to_string()])
                .status();
            if !wait_until(STOP_TIMEOUT, || self.exited()) {
                let _ = Command::new("kill")
                    .args(["-s", "KILL", "--", &format!("-{}", self.child.id())])
                    .status();
                let _ = self.child.wait();
            }
        }
        for pid in self.processes() {
            let _ = Command::new("kill")
                .args(["-s", "KILL", &pid.to_string()])
                .status();
        }
    }
}

/// curl (a real client): the status and the body; status 0 when no
/// connection was made.
fn curl_with(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running curl");
    let all = text(&out.stdout);
    let (body, code) = all.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn curl(url: &str) -> (u16, String) {
    curl_with(&[url])
}

/// Apache's User: www-data when the tests run as root (start-server's
/// default then), else the tests' own.
fn expected_uid() -> String {
    let own = fs::metadata("/proc/self").unwrap();
    use std::os::unix::fs::MetadataExt;
    if own.uid() == 0 {
        let out = Command::new("id")
            .args(["-u", "www-data"])
            .output()
            .unwrap();
        text(&out.stdout).trim().to_string()
    } else {
        own.uid().to_string()
    }
}

// ------------------------------------------------------------ module-config

#[test]
fn module_config_lines_load_the_installed_module() {
    let venv = installed_venv();
    let out = run_express(&["module-config"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let config = text(&out.stdout);
    let lines: Vec<&str> = config.lines().collect();
    assert_eq!(lines.len(), 2, "module-config printed:\n{config}");
    let module = lines[0]
        .strip_prefix("LoadModule wsgi_module \"")
        .and_then(|l| l.strip_suffix('"'))
        .unwrap_or_else(|| panic!("first line: {}", lines[0]));
    assert!(
        Path::new(module).is_file() && Path::new(module).starts_with(venv),
        "the module {module} is not a file inside {}",
        venv.display()
    );
    assert_eq!(lines[1], format!("WSGIPythonHome \"{}\"", venv.display()));

    let location = run_express(&["module-location"]);
    assert!(location.status.success());
    assert_eq!(text(&location.stdout).trim(), module);

    // `apache2 -t` accepts them, and an Apache with them serves from the
    // virtualenv (the module embeds its Python, sys.prefix is the venv).
    let check = Apache::builder()
        .with_module(false)
        .directives(&config)
        .config_test();
    assert!(check.ok, "apache2 -t with:\n{config}\n{}", check.output);
    let apache = Apache::builder()
        .with_module(false)
        .directives(&config)
        .directives("WSGIScriptAlias /app {dir}/app.wsgi")
        .file("app.wsgi", APP)
        .start();
    let body = common::ok_body(&apache, "/app/x");
    assert_eq!(field(&body, "prefix"), venv.to_str().unwrap());
    assert_eq!(field(&body, "path_info"), "/x");
}

// ------------------------------------------------------------ start-server

#[test]
fn start_server_options_take_effect_and_sigterm_stops_it() {
    let site = Site::new();
    let served = Served::start(
        &site,
        &[
            &site.path("app.wsgi"),
            "--processes",
            "2",
            "--threads",
            "3",
            "--url-alias",
            "/static",
            &site.path("static"),
            "--url-alias",
            "/one.txt",
            &site.path("one.txt"),
            "--document-root",
            &site.path("docroot"),
            "--python-path",
            &site.path("pylib"),
            "--working-directory",
            &site.path("work"),
            "--log-level",
            "debug",
        ],
    );

    // The application: every URL no file answers, mounted at /.
    let app = served.fields("/some/where");
    assert_eq!(app["path_info"], "/some/where");
    assert_eq!(app["script_name"], "");
    assert_eq!(app["helper"], "from --python-path");
    assert_eq!(app["cwd"], site.path("work"));
    assert_eq!(app["uid"], expected_uid());
    // Daemon mode: a group named HOST:PORT, processes given so multiprocess.
    assert_eq!(app["process_group"], format!("127.0.0.1:{}", served.port));
    assert_eq!(app["multiprocess"], "True");
    assert_eq!(
        processes_with(&format!("(wsgi:127.0.0.1:{}:", served.port)).len(),
        2,
        "two daemon processes\n{}",
        served.logs()
    );
    assert!(
        served.error_log().contains(&format!(
            "daemon process group: '127.0.0.1:{}' 2x3 threads",
            served.port
        )),
        "{}",
        served.logs()
    );

    // Files: the document root's, and both kinds of --url-alias.
    assert_eq!(
        curl(&served.url("/page.txt")),
        (200, "a file of the --document-root\n".to_string())
    );
    assert_eq!(
        curl(&served.url("/static/hello.txt")),
        (200, "static file through --url-alias\n".to_string())
    );
    assert_eq!(
        curl(&served.url("/one.txt")),
        (200, "one file through --url-alias\n".to_string())
    );

    // --host: only that address listens.
    assert_eq!(
        curl(&format!("http://127.0.0.2:{}/", served.port)).0,
        0,
        "--host 127.0.0.1 also listens on 127.0.0.2"
    );

    // --server-root holds the configuration, the pid file and the log;
    // --log-level debug reaches it.
    for name in [
        "httpd.conf",
        "httpd.pid",
        "handler.wsgi",
        "apachectl",
        "error_log",
    ] {
        assert!(
            served.root.join(name).is_file(),
            "{name} in the server root"
        );
    }
    assert!(served.error_log().contains(":debug]"), "{}", served.logs());
    let (out, _) = served.terminal();
    assert!(
        out.contains(&format!("http://127.0.0.1:{}/", served.port)),
        "{out}"
    );

    served.stop_with("TERM");
}

#[test]
fn start_server_defaults_log_to_terminal_and_sigint_stops_it() {
    let site = Site::new();
    let served = Served::start(&site, &[&site.path("app.wsgi"), "--log-to-terminal"]);
    let app = served.fields("/");
    // No --processes: one process, not multiprocess (as mod_wsgi-express);
    // no --working-directory: the directory start-server ran in.
    assert_eq!(app["multiprocess"], "False");
    assert_eq!(app["cwd"], site.dir.path().to_str().unwrap());
    assert_eq!(app["helper"], "not importable");
    assert_eq!(
        processes_with(&format!("(wsgi:127.0.0.1:{}:", served.port)).len(),
        1
    );
    // The default document root is the server root's htdocs.
    fs::write(served.root.join("htdocs/default.txt"), "in htdocs\n").unwrap();
    fs::set_permissions(
        served.root.join("htdocs/default.txt"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    assert_eq!(
        curl(&served.url("/default.txt")),
        (200, "in htdocs\n".to_string())
    );
    // The log goes to the terminal, at warn: no debug lines, no file.
    let (_, err) = served.terminal();
    assert!(err.contains("resuming normal operations"), "{err}");
    assert!(!err.contains(":debug]") && !err.contains(":info]"), "{err}");
    assert!(!served.root.join("error_log").exists());
    served.stop_with("INT");
}

#[test]
fn start_server_without_a_script_serves_a_welcome_page() {
    let site = Site::new();
    let served = Served::start(&site, &[]);
    let (status, body) = curl(&served.url("/anything"));
    assert_eq!(status, 200, "{}", served.logs());
    assert!(body.contains("mod_wsgi_rs-express is running"), "{body}");
    assert!(served.root.join("default.wsgi").is_file());
    served.stop_with("TERM");
}

/// --server-status: Apache's status page and ours, from this machine;
/// the application still gets every other URL.
#[test]
fn server_status_shows_apache_and_the_daemon_group() {
    let site = Site::new();
    let served = Served::start(&site, &[&site.path("app.wsgi"), "--server-status"]);
    let (status, body) = curl(&served.url("/wsgi-status?json"));
    assert_eq!(status, 200, "{body}\n{}", served.logs());
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    let group = &page["groups"][0];
    assert!(
        group["name"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":{}", served.port)),
        "{page}"
    );
    assert!(group["processes"][0]["pid"].as_u64().unwrap() > 0, "{page}");
    let (status, body) = curl(&served.url("/server-status?auto"));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("BusyWorkers"), "{body}");
    let (status, _) = curl(&served.url("/elsewhere"));
    assert_eq!(status, 200, "{}", served.logs());
    served.stop_with("TERM");
}

#[test]
fn https_port_serves_with_the_given_certificate() {
    let site = Site::new();
    let make = Command::new(common::venv::PYTHON)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/apps/express_rs/make_cert.py"
        ))
        .arg(site.dir.path())
        .output()
        .unwrap();
    assert!(make.status.success(), "{}", text(&make.stderr));
    let https_port = pick_port();
    let served = Served::start(
        &site,
        &[
            &site.path("app.wsgi"),
            "--https-port",
            &https_port.to_string(),
            "--ssl-certificate-file",
            &site.path("cert.pem"),
            "--ssl-certificate-key-file",
            &site.path("key.pem"),
        ],
    );
    // curl verifies the server's certificate against the one made here.
    let (status, body) = curl_with(&[
        "--cacert",
        &site.path("cert.pem"),
        "--resolve",
        &format!("localhost:{https_port}:127.0.0.1"),
        &format!("https://localhost:{https_port}/secure"),
    ]);
    assert_eq!(status, 200, "{body}\n{}", served.logs());
    let app = fields(&body);
    assert_eq!(app["url_scheme"], "https");
    assert_eq!(app["server_port"], https_port.to_string());
    assert_eq!(app["path_info"], "/secure");
    // Plain HTTP goes on on --port.
    assert_eq!(served.fields("/")["url_scheme"], "http");
    served.stop_with("TERM");
}

#[test]
fn reload_on_changes_restarts_the_daemon_after_an_edit() {
    let site = Site::new();
    // Up when a document root file answers: the application gets no
    // request before the edit, so its monitor must run from the start.
    let served = Served::start_ready_at(
        &site,
        &[
            &site.path("app.wsgi"),
            "--reload-on-changes",
            "--document-root",
            &site.path("docroot"),
        ],
        "/page.txt",
    );
    let watching = Regex::new(r"watching for changes in daemon process (\d+)").unwrap();
    let mut first_pid = String::new();
    assert!(
        wait_until(START_TIMEOUT, || {
            let log = served.error_log();
            match watching.captures(&log) {
                Some(c) => {
                    first_pid = c[1].to_string();
                    true
                }
                None => false,
            }
        }),
        "no change monitor started\n{}",
        served.logs()
    );
    // Edit the script (written whole, then renamed over it, as editors do).
    let script = site.dir.path().join("app.wsgi");
    let edited = site.dir.path().join("app.wsgi.new");
    fs::write(&edited, APP.replace("VERSION = \"1\"", "VERSION = \"2\"")).unwrap();
    fs::set_permissions(&edited, fs::Permissions::from_mode(0o644)).unwrap();
    fs::rename(&edited, &script).unwrap();
    let restarting = format!(
        "{} changed: restarting daemon process {first_pid}",
        script.display()
    );
    assert!(
        wait_until(RELOAD_TIMEOUT, || served.error_log().contains(&restarting)),
        "no restart after the edit\n{}",
        served.logs()
    );
    let mut after = HashMap::new();
    let reloaded = wait_until(RELOAD_TIMEOUT, || {
        let (status, body) = curl(&served.url("/"));
        after = fields(&body);
        status == 200 && after.get("version").map(String::as_str) == Some("2")
    });
    assert!(
        reloaded,
        "the edit is not served: {after:?}\n{}",
        served.logs()
    );
    assert_ne!(after["pid"], first_pid, "the same daemon process");
    served.stop_with("TERM");
}

// ------------------------------------------------------------ setup-server

#[test]
fn setup_server_writes_an_apachectl_that_starts_and_stops_it() {
    let site = Site::new();
    let port = pick_port();
    let root = site.root();
    let out = run_express(&[
        "setup-server",
        &site.path("app.wsgi"),
        "--port",
        &port.to_string(),
        "--host",
        "127.0.0.1",
        "--server-root",
        root.to_str().unwrap(),
        "--working-directory",
        &site.path("work"),
        "--callable-object",
        "alternate",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(root.join("apachectl").to_str().unwrap()));
    let apachectl = root.join("apachectl");
    let ctl = |command: &str| {
        Command::new(&apachectl)
            .arg(command)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let check = ctl("configtest");
    assert!(
        check.status.success() && text(&check.stderr).contains("Syntax OK"),
        "{}",
        text(&check.stderr)
    );
    // Stops it (and kills what is left) even when an assertion fails.
    struct Stop<'a>(&'a Path, u16);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            let _ = Command::new(self.0.join("apachectl"))
                .arg("stop")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let conf = self.0.join("httpd.conf");
            let _ = wait_until(STOP_TIMEOUT, || {
                processes_with(conf.to_str().unwrap()).is_empty()
            });
            for pid in processes_with(conf.to_str().unwrap())
                .into_iter()
                .chain(processes_with(&format!("(wsgi:127.0.0.1:{}:", self.1)))
            {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    }
    let start = ctl("start");
    let _stop = Stop(&root, port);
    assert!(start.status.success(), "{}", text(&start.stderr));
    let url = format!("http://127.0.0.1:{port}/from/apachectl");
    let mut answer = (0, String::new());
    assert!(
        wait_until(START_TIMEOUT, || {
            answer = curl(&url);
            answer.0 == 200
        }),
        "{answer:?}\n{}",
        fs::read_to_string(root.join("error_log")).unwrap_or_default()
    );
    assert_eq!(field(&answer.1, "path_info"), "/from/apachectl");
    assert_eq!(field(&answer.1, "cwd"), site.path("work"));
    assert_eq!(field(&answer.1, "callable"), "alternate");

    let stop = ctl("stop");
    assert!(stop.status.success(), "{}", text(&stop.stderr));
    let conf = root.join("httpd.conf");
    assert!(
        wait_until(STOP_TIMEOUT, || {
            processes_with(conf.to_str().unwrap()).is_empty()
                && processes_with(&format!("(wsgi:127.0.0.1:{port}:")).is_empty()
        }),
        "apachectl stop left processes"
    );
    assert_eq!(curl(&url).0, 0, "still answering after apachectl stop");
}

#[test]
fn setup_server_warns_of_paths_apache_cannot_reach() {
    let site = Site::new();
    let private = site.dir.path().join("private");
    fs::create_dir(&private).unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(private.join("app.wsgi"), APP).unwrap();
    // The working directory (the current one by default: the checkout,
    // which may be closed to others) given, so that the one warning is
    // about the script's directory.
    let out = run_express(&[
        "setup-server",
        private.join("app.wsgi").to_str().unwrap(),
        "--server-root",
        site.root().to_str().unwrap(),
        "--working-directory",
        site.dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let warning = format!(
        "run as www-data and may not reach {}: {} is not open to others",
        private.join("app.wsgi").display(),
        private.display()
    );
    if expected_uid() == text(&Command::new("id").arg("-u").output().unwrap().stdout).trim() {
        // Not root: Apache runs as us, nothing to warn of.
        assert!(!err.contains("warning"), "{err}");
    } else {
        assert!(err.contains(&warning), "wanted {warning:?} in:\n{err}");
        assert_eq!(err.lines().count(), 1, "one warning only:\n{err}");
    }
}

// ------------------------------------------------------------ bad options

#[test]
fn bad_options_are_refused_with_a_message_and_status_2() {
    let site = Site::new();
    let app = site.path("app.wsgi");
    let root = site.root();
    let root_arg = root.to_str().unwrap().to_string();
    let cert = site.path("app.wsgi");
    // A port of its own, in case a case is wrongly accepted and serves.
    let port = pick_port().to_string();
    let cases: &[(&[&str], &str)] = &[
        (&["--port", "70000"], "--port 70000 is not a TCP port"),
        (&["--port", "eighty"], "invalid int value"),
        (&["--threads", "0"], "--threads must be 1 or more"),
        (&["--processes", "0"], "--processes must be 1 or more"),
        (&["--log-level", "loud"], "invalid choice: 'loud'"),
        (&["--bogus"], "unrecognized arguments: --bogus"),
        (
            &["--https-port", "8443"],
            "--https-port needs --ssl-certificate-file",
        ),
        (
            &["--ssl-certificate-file", &cert],
            "--https-port is needed with --ssl-certificate-file",
        ),
        (
            &["--document-root", "/no/such/dir"],
            "--document-root /no/such/dir does not exist",
        ),
        (
            &["--url-alias", "static", "/tmp"],
            "the URL path must start with /",
        ),
        (
            &["--httpd-executable", "/no/such/httpd"],
            "/no/such/httpd is missing",
        ),
    ];
    for (extra, message) in cases {
        let mut args = vec![
            "start-server",
            &app,
            "--server-root",
            &root_arg,
            "--port",
            &port,
        ];
        args.extend_from_slice(extra);
        let out = run_express(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(
            err.contains(message),
            "{extra:?}: wanted {message:?} in:\n{err}"
        );
        assert!(!root.exists(), "{extra:?} wrote the server root");
    }
    let out = run_express(&[
        "start-server",
        "/no/such/app.wsgi",
        "--server-root",
        &root_arg,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("the WSGI script /no/such/app.wsgi does not exist"));
    let out = run_express(&["module-config", "extra"]);
    assert_eq!(out.status.code(), Some(2));
}
