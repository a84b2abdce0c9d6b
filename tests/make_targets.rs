//! The Makefile's user-facing targets: `make run` (through the script it
//! runs), `make -s module-path` and `make install DESTDIR=...`.

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn make_run_serves_the_example_and_ctrl_c_leaves_nothing() {
    let dir = tempfile::Builder::new()
        .prefix("mwrs-run-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let run_dir = dir.path().join("run");
    // The checkout may sit where www-data cannot read; serve a copy.
    let app = dir.path().join("hello.wsgi");
    std::fs::copy(root().join("conf-examples/hello.wsgi"), &app).unwrap();
    std::fs::set_permissions(&app, std::fs::Permissions::from_mode(0o644)).unwrap();
    let port = pick_port();
    let child = Command::new(root().join("scripts/run.sh"))
        .arg(module_path())
        .arg(port.to_string())
        .arg(&app)
        .arg(&run_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let pgid = child.id();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut body = String::new();
    while Instant::now() < deadline {
        if let Ok(resp) = ureq::get(&format!("http://127.0.0.1:{port}/")).call() {
            body = resp.into_string().unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let members = group_members(pgid);
    // mod_wsgi-express's title for the daemon processes.
    let title = format!("(wsgi:127.0.0.1:{port}:{})", nix::unistd::getuid());
    let daemons = members
        .iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .unwrap_or_default()
                .trim_end_matches('\0')
                == title
        })
        .count();
    // Ctrl-C: the terminal sends SIGINT to the whole foreground group.
    let group = nix::unistd::Pid::from_raw(pgid as i32);
    nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGINT).unwrap();
    let output = child.wait_with_output().unwrap();
    let mut left = group_members(pgid);
    let wait_until = Instant::now() + Duration::from_secs(10);
    while !left.is_empty() && Instant::now() < wait_until {
        std::thread::sleep(Duration::from_millis(100));
        left = group_members(pgid);
    }
    if !left.is_empty() {
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(body, "Hello, World!", "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        members.len() >= 2,
        "expected the Apache parent and children, saw {members:?}"
    );
    assert!(left.is_empty(), "processes left after Ctrl-C: {left:?}");
    assert!(
        stdout.contains(&format!("http://127.0.0.1:{port}/")),
        "the URL is printed: {stdout}"
    );
    assert!(
        stdout.contains("Daemon Processes   : 3 x 2 threads"),
        "{stdout}"
    );
    assert_eq!(
        daemons, 3,
        "three daemon processes titled {title}: {members:?}"
    );
}

#[test]
fn module_path_prints_only_the_path() {
    let out = Command::new("make")
        .args(["-s", "module-path"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text:?}");
    let path = Path::new(lines[0]);
    assert!(path.is_absolute(), "{text:?}");
    assert!(path.ends_with("release/libmod_wsgi_rs.so"), "{text:?}");
}

#[test]
fn make_install_honours_destdir() {
    let dest = tempfile::Builder::new()
        .prefix("mwrs-install-")
        .tempdir()
        .unwrap();
    let out = Command::new("make")
        .args(["-s", "install"])
        .arg(format!("DESTDIR={}", dest.path().display()))
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let libexec = String::from_utf8(
        Command::new("apxs")
            .args(["-q", "LIBEXECDIR"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let sysconf = String::from_utf8(
        Command::new("apxs")
            .args(["-q", "SYSCONFDIR"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let so = dest
        .path()
        .join(libexec.trim().trim_start_matches('/'))
        .join("mod_wsgi_rs.so");
    assert!(so.is_file(), "{} missing", so.display());
    assert_eq!(
        std::fs::read(&so).unwrap(),
        std::fs::read(module_path()).unwrap()
    );
    let load = dest
        .path()
        .join(sysconf.trim().trim_start_matches('/'))
        .join("mods-available/wsgi_rs.load");
    let text = std::fs::read_to_string(&load).unwrap();
    assert_eq!(
        text,
        format!(
            "# Conflicts: wsgi\nLoadModule wsgi_module {}/mod_wsgi_rs.so\n",
            libexec.trim()
        )
    );
}

/// `make` and `make install` need only build tools and install nothing;
/// the targets that run Apache install Debian's packages first.
#[test]
fn only_run_and_test_targets_install_packages() {
    // What `make -n target` would run.
    let plan = |target: &str| {
        let out = Command::new("make")
            .args(["-n", target])
            .current_dir(root())
            .output()
            .unwrap();
        let plan = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "make -n {target}: {plan}");
        plan
    };
    for target in ["all", "build", "install", "deb"] {
        let plan = plan(target);
        assert!(
            !plan.contains("apt-get"),
            "make {target} would run:\n{plan}"
        );
    }
    for target in ["test", "run", "bench"] {
        let plan = plan(target);
        assert!(
            plan.contains("apt-get install"),
            "make {target} would run:\n{plan}"
        );
    }
}

#[test]
fn a_missing_build_need_is_named_with_its_package_and_nothing_is_built() {
    let out = Command::new("make")
        .args([
            "build",
            "APXS=/nonexistent/apxs",
            "PYTHON=/nonexistent/python3",
            "CARGO_TARGET_DIR=/nonexistent/target",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("apxs (/nonexistent/apxs does not run): apt-get install apache2-dev"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Python (/nonexistent/python3 does not run): apt-get install python3-dev"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("cargo build"));
}

fn apxs_q(name: &str) -> String {
    let out = Command::new("apxs").args(["-q", name]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The Apache that `make run` and `make test` start, and its modules, are
/// what apxs says (the variables the Makefile exports to the tests).
#[test]
fn the_makefile_takes_apache_and_its_modules_dir_from_apxs() {
    let out = Command::new("make")
        .args(["-s", "-p", "-n", "module-path"])
        .current_dir(root())
        .output()
        .unwrap();
    let db = String::from_utf8_lossy(&out.stdout);
    let exported = |name: &str| {
        let prefix = format!("{name} := ");
        db.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("{name} not set by the Makefile"))
            .to_string()
    };
    let apache = exported("MOD_WSGI_RS_APACHE");
    assert_eq!(
        apache,
        format!("{}/{}", apxs_q("SBINDIR"), apxs_q("TARGET"))
    );
    assert!(Path::new(&apache).is_file(), "{apache}");
    assert_eq!(exported("MOD_WSGI_RS_MODULES_DIR"), apxs_q("LIBEXECDIR"));
}
