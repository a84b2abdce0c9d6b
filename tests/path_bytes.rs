//! Request paths and query strings that are not UTF-8 (a latin-1 `é` sent
//! as %E9, raw bytes over 0x7f) reach the application byte for byte, one
//! character per byte (PEP 3333), in embedded and daemon mode, as with C
//! mod_wsgi; Apache serves them, so must we.

mod common;
use common::*;

const APP: &str = r#"
def application(environ, start_response):
    out = []
    for key in ('SCRIPT_NAME', 'PATH_INFO', 'REQUEST_URI', 'QUERY_STRING'):
        out.append('%s=%s' % (key, environ.get(key, '').encode('latin-1').hex()))
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return ['\n'.join(out).encode()]
"#;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

#[test]
fn non_utf8_paths_and_queries_reach_the_app_byte_for_byte() {
    for daemon in [false, true] {
        let (group, process) = if daemon {
            ("WSGIDaemonProcess g threads=2\n", " process-group=g")
        } else {
            ("", "")
        };
        let apache = Apache::builder()
            .file("app/bytes.wsgi", APP)
            .directives(&format!(
                "{group}WSGIScriptAlias /app {{dir}}/app/bytes.wsgi{process}\n"
            ))
            .start();
        for (request_path, path_info, query) in [
            (&b"/app/caf%E9?q=%E9"[..], &b"/caf\xe9"[..], &b"q=%E9"[..]),
            (b"/app/caf\xc3\xa9?x=\xff", b"/caf\xc3\xa9", b"x=\xff"),
            (b"/app/\xff\xfe/x", b"/\xff\xfe/x", b""),
        ] {
            let mut raw = b"GET ".to_vec();
            raw.extend_from_slice(request_path);
            raw.extend_from_slice(b" HTTP/1.0\r\nHost: localhost\r\n\r\n");
            let answer = apache.raw(&raw);
            let text = String::from_utf8_lossy(&answer).into_owned();
            let mode = if daemon { "daemon" } else { "embedded" };
            assert!(
                text.starts_with("HTTP/1.1 200"),
                "{mode} {}: {text}\n{}",
                String::from_utf8_lossy(request_path),
                apache.error_log()
            );
            assert_eq!(field(&text, "SCRIPT_NAME"), hex(b"/app"), "{mode}");
            assert_eq!(field(&text, "PATH_INFO"), hex(path_info), "{mode}");
            assert_eq!(field(&text, "QUERY_STRING"), hex(query), "{mode}");
            let uri = request_path;
            assert_eq!(field(&text, "REQUEST_URI"), hex(uri), "{mode}");
        }
    }
}
