//! `make deb`: the Debian package's metadata and files, then its life on a
//! Debian system: refused by dpkg next to C mod_wsgi's package, installed
//! by apt in its place, enabled by its postinst, refused by a2enmod while
//! C mod_wsgi's `wsgi` is enabled, checked by `apache2ctl -t`, serving a
//! request in daemon mode through Debian's own /etc/apache2, and purged
//! without a trace.
//!
//! Where it is installed: the machine has C mod_wsgi's package installed
//! and other tests (and other test runs on the same machine, at the same
//! time) load its mod_wsgi.so, so it cannot be removed, even for a moment,
//! and restoring it would need the package archive. `dpkg --root` needs a
//! whole Debian inside that root for the maintainer scripts, and a copy of
//! /etc/apache2 would not be what a2enmod and apache2ctl really see. So the
//! lifecycle runs on this machine's own Debian seen through a private mount
//! namespace (`unshare --mount`): /etc, /usr, /var and /run are overlays of
//! the real directories whose writes land in a tmpfs that vanishes with the
//! namespace. dpkg, a2enmod, apache2ctl and Debian's apache2.conf are the
//! real ones; nothing outside the namespace sees a change, which the test
//! checks at the end. Other tests never read /etc/apache2 (private
//! ServerRoots), each run gets its own namespace and port, so the test runs
//! twice in a row or next to other runs. It needs root (mounts) and
//! overlayfs, as `make test` has.
//!
//! The package is built by `make package-deb` from the module under test
//! (`make deb` = build + package-deb): a test never rebuilds the module.

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::Duration;

const PACKAGE: &str = "libapache2-mod-wsgi-rs";
const C_PACKAGE: &str = "libapache2-mod-wsgi-py3";

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"))
}

/// The .deb made by `make package-deb` in a temp dir (removed with it). One
/// at a time: cargo-deb stages its files in the target dir.
struct Deb {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn build_deb() -> Deb {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = temp_dir_with_mode("mwrs-deb-", 0o755);
    let module = module_path();
    let target_dir = module
        .parent()
        .and_then(Path::parent)
        .expect("the module is in <target>/release/");
    let out = Command::new("make")
        .args(["-s", "package-deb"])
        .arg(format!("CARGO_TARGET_DIR={}", target_dir.display()))
        .arg(format!("DEB_DIR={}", dir.path().display()))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "make package-deb:\n{}", text(&out));
    let arch = String::from_utf8(run("dpkg", &["--print-architecture"]).stdout).unwrap();
    let name = format!(
        "{PACKAGE}_{}-1_{}.deb",
        env!("CARGO_PKG_VERSION"),
        arch.trim()
    );
    let path = dir.path().join(&name);
    assert!(path.is_file(), "{name} not made:\n{}", text(&out));
    Deb { _dir: dir, path }
}

fn deb_field(deb: &Deb, field: &str) -> String {
    let out = run("dpkg-deb", &["-f", deb.path.to_str().unwrap(), field]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// "3.11": the libpython the module links (it is built against it).
fn python_ldversion() -> String {
    let python = std::env::var("PYO3_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
    let out = run(
        &python,
        &[
            "-c",
            "import sysconfig; print(sysconfig.get_config_var('LDVERSION'))",
        ],
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn the_deb_declares_the_conflict_and_its_libpython_and_holds_the_module() {
    let deb = build_deb();
    assert_eq!(deb_field(&deb, "Package"), PACKAGE);
    let conflicts = deb_field(&deb, "Conflicts");
    assert!(
        conflicts.split(',').any(|c| c.trim() == C_PACKAGE),
        "Conflicts: {conflicts}"
    );
    let depends = deb_field(&deb, "Depends");
    let libpython = format!("libpython{} ", python_ldversion());
    assert!(depends.contains(&libpython), "Depends: {depends}");
    assert!(
        depends.contains("apache2-api-20120211"),
        "Depends: {depends}"
    );

    let listing = text(&run("dpkg-deb", &["-c", deb.path.to_str().unwrap()]));
    let module = format!(".{MODULES_DIR}/mod_wsgi_rs.so");
    for path in [
        module.as_str(),
        "./etc/apache2/mods-available/wsgi_rs.load",
        "./usr/share/doc/libapache2-mod-wsgi-rs/README.md",
    ] {
        assert!(
            listing.lines().any(|l| l.ends_with(path)),
            "{path} not in the package:\n{listing}"
        );
    }
    let load = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "dpkg-deb --fsys-tarfile '{}' | tar -xO ./etc/apache2/mods-available/wsgi_rs.load",
            deb.path.display()
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&load.stdout),
        format!("# Conflicts: wsgi\nLoadModule wsgi_module {MODULES_DIR}/mod_wsgi_rs.so\n")
    );
}

/// A private mount namespace over this machine's Debian (see the file doc).
/// Dropping it stops what was started inside and ends the namespace.
struct Sandbox {
    holder: Child,
    _tmpfs: tempfile::TempDir,
    apache_pid: Option<u32>,
}

impl Sandbox {
    fn new() -> Sandbox {
        let tmpfs = temp_dir_with_mode("mwrs-deb-sandbox-", 0o755);
        let script = r#"set -e
top=$1
mount -t tmpfs -o mode=0755 mwrs-deb-sandbox "$top"
for d in etc usr var run; do
  mkdir "$top/$d.up" "$top/$d.work"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$top/$d.up,workdir=$top/$d.work" "/$d"
done
# Maintainer scripts restart apache2 through invoke-rc.d: never here (the
# test starts Debian's apache2 itself, on its own port).
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod 0755 /usr/sbin/policy-rc.d
echo ready
exec sleep 3600"#;
        let mut holder = Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                script,
                "sh",
            ])
            .arg(tmpfs.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("unshare (util-linux) runs");
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.trim() != "ready" {
            let _ = holder.kill();
            let out = holder.wait_with_output().unwrap();
            panic!(
                "no private mount namespace with overlays (needs root and overlayfs): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Sandbox {
            holder,
            _tmpfs: tmpfs,
            apache_pid: None,
        }
    }

    /// `script` run by sh inside the namespace.
    fn sh(&self, script: &str) -> Output {
        Command::new("nsenter")
            .arg(format!("--target={}", self.holder.id()))
            .args(["--mount", "--", "sh", "-c", script])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .unwrap()
    }

    /// `script`, which must succeed; its output.
    fn ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(out.status.success(), "{script}:\n{}", text(&out));
        text(&out)
    }

    fn exists(&self, path: &str) -> bool {
        self.sh(&format!("test -e '{path}' || test -L '{path}'"))
            .status
            .success()
    }

    fn error_log(&self) -> String {
        text(&self.sh("cat /var/log/apache2/error.log"))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(pid) = self.apache_pid {
            // Apache's processes would keep the namespace alive.
            let group = nix::unistd::Pid::from_raw(pid as i32);
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGTERM);
            if !wait_until(Duration::from_secs(15), || group_members(pid).is_empty()) {
                let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
            }
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// What the test could change on the machine, outside the namespace.
fn host_state() -> Vec<(String, String)> {
    let status = |p: &str| {
        text(&run("dpkg-query", &["-W", "-f=${Status}", p]))
            .trim()
            .to_string()
    };
    let exists = |p: String| (Path::new(&p).exists().to_string(), p);
    vec![
        (status(C_PACKAGE), C_PACKAGE.to_string()),
        (status(PACKAGE), PACKAGE.to_string()),
        exists(format!("{MODULES_DIR}/mod_wsgi_rs.so")),
        exists(format!("{MODULES_DIR}/mod_wsgi.so")),
        exists("/etc/apache2/mods-available/wsgi_rs.load".into()),
        exists("/etc/apache2/mods-enabled/wsgi_rs.load".into()),
        exists("/etc/apache2/mods-enabled/wsgi.load".into()),
        exists("/etc/apache2/conf-enabled/wsgi-rs-test.conf".into()),
    ]
}

const APP: &str = r#"def application(environ, start_response):
    body = "group=%s\n" % environ["mod_wsgi.process_group"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
"#;

#[test]
fn the_deb_installs_enables_serves_through_debians_config_and_purges_clean() {
    let built = build_deb();
    let deb = built.path.to_str().unwrap();
    let before = host_state();
    assert_eq!(
        before[0].0, "install ok installed",
        "this test expects {C_PACKAGE} installed on the machine (make deps)"
    );
    let mut sandbox = Sandbox::new();

    // The declared conflict is enforced by dpkg.
    let refused = sandbox.sh(&format!("dpkg -i '{deb}'"));
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        text(&refused).contains(&format!("{PACKAGE} conflicts with {C_PACKAGE}")),
        "{}",
        text(&refused)
    );

    // apt, as the README says: C mod_wsgi's package goes (its prerm
    // disables `wsgi`), ours is installed and its postinst enables wsgi_rs.
    let replaced = sandbox.ok(&format!("apt-get install -y '{deb}'"));
    assert!(
        replaced.contains(&format!("REMOVED:\n  {C_PACKAGE}")),
        "{replaced}"
    );
    let listed = sandbox.ok(&format!("dpkg -L {PACKAGE}"));
    assert!(
        listed
            .lines()
            .any(|l| l == format!("{MODULES_DIR}/mod_wsgi_rs.so")),
        "{listed}"
    );
    assert!(sandbox.sh("a2query -q -m wsgi_rs").status.success());
    assert!(!sandbox.sh("a2query -q -m wsgi").status.success());

    // With C mod_wsgi's configuration enabled again (its conffiles stay
    // after `dpkg -r`), a2enmod refuses wsgi_rs and says why.
    sandbox.ok("a2dismod -q wsgi_rs && a2enmod -q wsgi");
    let conflict = sandbox.sh("a2enmod wsgi_rs");
    assert!(!conflict.status.success(), "{}", text(&conflict));
    assert!(
        text(&conflict).contains("Module wsgi is enabled - cannot proceed due to conflicts"),
        "{}",
        text(&conflict)
    );
    assert!(!sandbox.sh("a2query -q -m wsgi_rs").status.success());
    sandbox.ok("a2dismod -q wsgi && a2enmod -q wsgi_rs");

    // Debian's own configuration, on a private port, with a daemon group.
    let port = pick_port();
    sandbox.ok(&format!(
        "echo 'Listen 127.0.0.1:{port}' > /etc/apache2/ports.conf && \
         mkdir -p /var/www/wsgi-rs-test && cat > /var/www/wsgi-rs-test/hello.wsgi <<'EOF'\n{APP}EOF\n\
         cat > /etc/apache2/conf-available/wsgi-rs-test.conf <<'EOF'\n\
         ServerName 127.0.0.1\n\
         WSGIDaemonProcess pkgtest threads=2\n\
         WSGIScriptAlias /hello /var/www/wsgi-rs-test/hello.wsgi process-group=pkgtest\n\
         <Directory /var/www/wsgi-rs-test>\n    Require all granted\n</Directory>\n\
         EOF\n\
         a2enconf -q wsgi-rs-test"
    ));
    let check = sandbox.sh("apache2ctl -t");
    assert!(check.status.success(), "{}", text(&check));
    assert!(text(&check).contains("Syntax OK"), "{}", text(&check));
    assert!(!text(&check).contains("already loaded"), "{}", text(&check));

    sandbox.ok("apache2ctl start");
    let pid: u32 = sandbox
        .ok("cat /run/apache2/apache2.pid")
        .trim()
        .parse()
        .expect("apache2's pid file");
    sandbox.apache_pid = Some(pid);
    let url = format!("http://127.0.0.1:{port}/hello");
    let mut body = String::new();
    let served = wait_until(Duration::from_secs(30), || match ureq::get(&url).call() {
        Ok(r) => {
            body = r.into_string().unwrap();
            true
        }
        Err(_) => false,
    });
    assert!(served, "{url} not served:\n{}", sandbox.error_log());
    assert_eq!(body, "group=pkgtest\n");
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    assert!(
        maps.contains(&format!("{MODULES_DIR}/mod_wsgi_rs.so")),
        "apache2 ({pid}) has not loaded the packaged module"
    );
    assert!(!maps.contains("/mod_wsgi.so"), "C mod_wsgi loaded too");
    sandbox.ok("apache2ctl stop");
    assert!(
        wait_until(Duration::from_secs(20), || group_members(pid).is_empty()),
        "apache2 still running: {:?}",
        group_members(pid)
    );
    sandbox.apache_pid = None;

    // Purge: every file the package listed is gone, and its a2enmod state.
    let owned: Vec<&str> = listed
        .lines()
        .filter(|p| p.starts_with('/'))
        .filter(|p| p.contains(PACKAGE) || !sandbox.sh(&format!("test -d '{p}'")).status.success())
        .collect();
    assert!(owned.len() >= 3, "{listed}");
    sandbox.ok("a2disconf -q wsgi-rs-test");
    sandbox.ok(&format!("dpkg -P {PACKAGE}"));
    let left: Vec<&str> = owned.into_iter().filter(|p| sandbox.exists(p)).collect();
    assert!(left.is_empty(), "left after purge: {left:?}");
    // a2enmod's state: enabled/disabled by maintainer scripts or the admin.
    let state = sandbox.ok("find /var/lib/apache2 -name 'wsgi_rs*'");
    assert!(state.trim().is_empty(), "left after purge: {state}");
    assert!(!sandbox.exists("/etc/apache2/mods-enabled/wsgi_rs.load"));
    let status = text(&sandbox.sh(&format!("dpkg-query -W -f='${{Status}}' {PACKAGE}")));
    assert!(
        !status.contains("ok installed") && !status.contains("config-files"),
        "{status}"
    );
    drop(sandbox);

    assert_eq!(host_state(), before, "the machine changed");
}
