//! conf-examples/: where the files are, and their placeholders filled in.
//!
//! An example names what a user has to replace as `{name}` (each file says
//! which in its header). The harness itself fills `{port}` (and `{dir}`);
//! every other placeholder is given here by the test.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The conf-examples directory of the source tree.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("conf-examples")
}

/// File names of every conf-examples/*.conf, sorted.
pub fn conf_files() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .expect("reading conf-examples/")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".conf"))
        .collect();
    names.sort();
    names
}

/// conf-examples/`name` with each `{key}` of `values` replaced by its
/// value. Panics if a placeholder other than the harness's `{port}` is
/// left, so an example and its test cannot drift apart unnoticed.
pub fn render(name: &str, values: &[(&str, &str)]) -> String {
    let path = dir().join(name);
    let mut text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    for (key, value) in values {
        text = text.replace(&format!("{{{key}}}"), value);
    }
    // `%{GROUP}` and the like are mod_wsgi's own expansions, not ours.
    let placeholder = regex::Regex::new(r"(^|[^%])\{([a-z_]+)\}").unwrap();
    let left: Vec<&str> = placeholder
        .captures_iter(&text)
        .map(|c| c.get(2).unwrap().as_str())
        .filter(|k| *k != "port")
        .collect();
    assert!(
        left.is_empty(),
        "{name}: placeholders left unfilled: {left:?}"
    );
    text
}

/// A self-signed certificate for `localhost` and 127.0.0.1, made with
/// openssl in `dir`: (certificate, key), both PEM, readable by all.
pub fn make_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("running openssl");
    assert!(
        out.status.success(),
        "openssl req failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [&cert, &key] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    (cert, key)
}
