//! `apache2 -t` with our module: bad input fails naming the directive, the
//! option and what is allowed; good configurations (conf-examples/) pass.

mod common;
use common::*;

/// Runs `apache2 -t` on `directives`, expecting failure whose output holds
/// every one of `needles`.
fn rejects(directives: &str, needles: &[&str]) {
    let t = Apache::builder()
        .file("app/app.wsgi", include_str!("../conf-examples/hello.wsgi"))
        .directives(directives)
        .config_test();
    assert!(
        !t.ok,
        "expected `apache2 -t` to fail for:\n{directives}\noutput:\n{}",
        t.output
    );
    for n in needles {
        assert!(
            t.output.contains(n),
            "output lacks {n:?} for:\n{directives}\noutput:\n{}",
            t.output
        );
    }
}

fn accepts(directives: &str) {
    let t = Apache::builder()
        .file("app/app.wsgi", include_str!("../conf-examples/hello.wsgi"))
        .directives(directives)
        .config_test();
    assert!(
        t.ok,
        "expected `apache2 -t` to pass for:\n{directives}\noutput:\n{}",
        t.output
    );
    assert!(t.output.contains("Syntax OK"), "{}", t.output);
}

#[test]
fn unknown_daemon_option() {
    rejects(
        "WSGIDaemonProcess g thread=2\n",
        &["WSGIDaemonProcess", "unknown option 'thread'", "threads"],
    );
}

#[test]
fn non_numeric_threads() {
    rejects(
        "WSGIDaemonProcess g threads=abc\n",
        &["WSGIDaemonProcess", "'threads'", "abc"],
    );
}

#[test]
fn negative_processes() {
    rejects(
        "WSGIDaemonProcess g processes=-1\n",
        &["WSGIDaemonProcess", "'processes'", "-1"],
    );
}

#[test]
fn zero_processes() {
    rejects(
        "WSGIDaemonProcess g processes=0\n",
        &["WSGIDaemonProcess", "'processes'"],
    );
}

#[test]
fn negative_timeout() {
    rejects(
        "WSGIDaemonProcess g request-timeout=-5\n",
        &["WSGIDaemonProcess", "'request-timeout'", "-5"],
    );
}

#[test]
fn non_numeric_timeout() {
    rejects(
        "WSGIDaemonProcess g inactivity-timeout=soon\n",
        &["WSGIDaemonProcess", "'inactivity-timeout'", "soon"],
    );
}

#[test]
fn option_without_value() {
    rejects(
        "WSGIDaemonProcess g threads\n",
        &["WSGIDaemonProcess", "threads"],
    );
}

#[test]
fn bad_umask() {
    rejects(
        "WSGIDaemonProcess g umask=0999\n",
        &["WSGIDaemonProcess", "'umask'", "0999"],
    );
}

#[test]
fn small_send_buffer() {
    rejects(
        "WSGIDaemonProcess g send-buffer-size=100\n",
        &["WSGIDaemonProcess", "'send-buffer-size'", "512"],
    );
}

#[test]
fn cpu_priority_out_of_range() {
    rejects(
        "WSGIDaemonProcess g cpu-priority=40\n",
        &["WSGIDaemonProcess", "'cpu-priority'", "40"],
    );
}

#[test]
fn daemon_user_root_refused() {
    rejects(
        "WSGIDaemonProcess g user=root\n",
        &["WSGIDaemonProcess", "root"],
    );
}

#[test]
fn daemon_user_unknown() {
    rejects(
        "WSGIDaemonProcess g user=no-such-user-xyz\n",
        &["WSGIDaemonProcess", "no-such-user-xyz"],
    );
}

#[test]
fn duplicate_group_in_one_scope() {
    rejects(
        "WSGIDaemonProcess g\nWSGIDaemonProcess g threads=2\n",
        &["WSGIDaemonProcess", "'g'"],
    );
}

#[test]
fn duplicate_group_across_virtual_hosts() {
    rejects(
        "<VirtualHost *:{port}>\n  WSGIDaemonProcess g\n</VirtualHost>\n<VirtualHost *:{port}>\n  ServerName other\n  WSGIDaemonProcess g\n</VirtualHost>\n",
        &["WSGIDaemonProcess", "'g'", "twice"],
    );
}

#[test]
fn process_group_that_does_not_exist() {
    rejects(
        "WSGIProcessGroup nosuch\n",
        &["WSGIProcessGroup", "'nosuch'", "WSGIDaemonProcess"],
    );
}

#[test]
fn script_alias_process_group_that_does_not_exist() {
    rejects(
        "WSGIScriptAlias / {dir}/app/app.wsgi process-group=ghost\n",
        &["WSGIScriptAlias", "'ghost'"],
    );
}

#[test]
fn group_of_another_virtual_host_is_private() {
    rejects(
        "<VirtualHost *:{port}>\n  WSGIDaemonProcess mine\n</VirtualHost>\n<VirtualHost *:{port}>\n  ServerName other\n  WSGIProcessGroup mine\n</VirtualHost>\n",
        &["WSGIProcessGroup", "'mine'", "another virtual host"],
    );
}

#[test]
fn bad_on_off() {
    rejects(
        "WSGIScriptReloading yes\n",
        &["WSGIScriptReloading", "On or Off", "yes"],
    );
}

#[test]
fn bad_pass_authorization_option() {
    rejects(
        "WSGIScriptAlias / {dir}/app/app.wsgi pass-authorization=maybe\n",
        &["WSGIScriptAlias", "pass-authorization", "maybe"],
    );
}

#[test]
fn unknown_script_alias_option() {
    rejects(
        "WSGIScriptAlias / {dir}/app/app.wsgi proces-group=x\n",
        &["WSGIScriptAlias", "proces-group"],
    );
}

#[test]
fn script_alias_missing_path() {
    rejects("WSGIScriptAlias /only-url\n", &["WSGIScriptAlias"]);
}

#[test]
fn bad_regex() {
    rejects(
        "WSGIScriptAliasMatch ^/(unclosed {dir}/app/app.wsgi\n",
        &["WSGIScriptAliasMatch", "^/(unclosed"],
    );
}

#[test]
fn server_only_directive_in_virtual_host() {
    rejects(
        "<VirtualHost *:{port}>\n  WSGIPythonHome /usr\n</VirtualHost>\n",
        &["WSGIPythonHome", "VirtualHost"],
    );
}

#[test]
fn server_directive_in_directory() {
    rejects(
        "<Directory /tmp>\n  WSGIDaemonProcess g\n</Directory>\n",
        &["WSGIDaemonProcess", "not allowed"],
    );
}

#[test]
fn python_optimize_out_of_range() {
    rejects("WSGIPythonOptimize 3\n", &["WSGIPythonOptimize", "3"]);
}

#[test]
fn hash_seed_not_a_number() {
    rejects("WSGIPythonHashSeed lots\n", &["WSGIPythonHashSeed", "lots"]);
}

#[test]
fn map_head_to_get_value() {
    rejects(
        "WSGIMapHEADToGET Sometimes\n",
        &["WSGIMapHEADToGET", "Auto", "Sometimes"],
    );
}

#[test]
fn import_script_missing_file() {
    rejects(
        "WSGIDaemonProcess g\nWSGIImportScript {dir}/app/missing.wsgi process-group=g application-group=%{GLOBAL}\n",
        &["WSGIImportScript", "missing.wsgi"],
    );
}

#[test]
fn trusted_proxy_not_an_address() {
    rejects(
        "WSGITrustedProxies 10.0.0.0/99\n",
        &["WSGITrustedProxies", "10.0.0.0/99"],
    );
}

#[test]
fn good_configurations_pass() {
    accepts("WSGIScriptAlias / {dir}/app/app.wsgi\n");
    accepts(
        "WSGIDaemonProcess site processes=3 threads=2 display-name=%{GROUP} maximum-requests=100 umask=0022\n\
         WSGIProcessGroup site\nWSGIApplicationGroup %{GLOBAL}\n\
         WSGIScriptAlias / {dir}/app/app.wsgi process-group=site application-group=%{GLOBAL}\n",
    );
    // A vhost may use the main server's group, and its own.
    accepts(
        "WSGIDaemonProcess shared\n<VirtualHost *:{port}>\n  WSGIDaemonProcess own\n  WSGIProcessGroup shared\n  WSGIScriptAlias /own {dir}/app/app.wsgi process-group=own\n</VirtualHost>\n",
    );
    // The group may be defined after it is referenced.
    accepts("WSGIProcessGroup later\nWSGIDaemonProcess later\n");
}

#[test]
fn every_conf_example_passes_config_test() {
    // Stand-ins for what a user fills in: paths and accounts that exist
    // here (mod_ssl opens the certificate files, user= names are looked up).
    let scratch = temp_dir_with_mode("mwsgi-examples-check-", 0o755);
    let (cert, key) = conf_examples::make_cert(scratch.path());
    let examples = conf_examples::dir();
    let tls_port = pick_port().to_string();
    let values = [
        ("examples", examples.to_str().unwrap()),
        ("venv", "/usr"),
        ("modules", MODULES_DIR),
        ("tls_port", tls_port.as_str()),
        ("cert", cert.to_str().unwrap()),
        ("key", key.to_str().unwrap()),
        ("user_a", "nobody"),
        ("user_b", "daemon"),
        ("sites", scratch.path().to_str().unwrap()),
    ];
    let names = conf_examples::conf_files();
    for name in &names {
        let t = Apache::builder()
            .directives(&conf_examples::render(name, &values))
            .config_test();
        assert!(
            t.ok,
            "conf-examples/{name} fails `apache2 -t`:\n{}",
            t.output
        );
    }
    assert!(
        names.len() >= 6,
        "expected conf-examples/*.conf, found {names:?}"
    );
}

/// Option values are read as mod_wsgi reads them: a name, '=' and a word
/// that may be quoted; anything else names the offending word.
#[test]
fn option_words_as_mod_wsgi_splits_them() {
    rejects(
        "WSGIDaemonProcess g threads = 5\n",
        &[
            "WSGIDaemonProcess",
            "option 'threads' is not of the form name=value",
        ],
    );
    rejects(
        "WSGIDaemonProcess g home=''\n",
        &["WSGIDaemonProcess", "option 'home' has an empty value"],
    );
    rejects(
        "WSGIDaemonProcess g threads=''\n",
        &["WSGIDaemonProcess", "option 'threads' has an empty value"],
    );
    rejects(
        "WSGIScriptAlias / {dir}/app/app.wsgi process-group=''\n",
        &[
            "WSGIScriptAlias",
            "option 'process-group' has an empty value",
        ],
    );
    rejects(
        "WSGIDaemonProcess g Threads=5\n",
        &["WSGIDaemonProcess", "unknown option 'Threads'"],
    );
    accepts(
        "WSGIDaemonProcess 'g' home='/tmp' display-name=\"(wsgi: a b)\" python-path='' \
         lang= locale='' python-eggs=\"\" threads='3'\n\
         WSGIImportScript '{dir}/app/app.wsgi' process-group='g' application-group='%{GLOBAL}'\n\
         WSGIScriptAlias '/' '{dir}/app/app.wsgi' process-group='g' pass-authorization='oN'\n\
         <WSGIInterpreterOptions Process-Group=g>\n</WSGIInterpreterOptions>\n",
    );
}

/// Apache hands the lines inside <WSGIInterpreterOptions> to the section's
/// handler: the Python directives are taken there, others are refused by
/// name.
#[test]
fn interpreter_options_section_body() {
    accepts(
        "<WSGIInterpreterOptions application-group=%{GLOBAL}>\n\
         WSGIPythonPath /tmp\nWSGIRestrictStdout On\nWSGISwitchInterval 0.01\n\
         </WSGIInterpreterOptions>\n",
    );
    rejects(
        "<WSGIInterpreterOptions application-group=x>\n\
         WSGIScriptAlias / {dir}/app/app.wsgi\n</WSGIInterpreterOptions>\n",
        &[
            "WSGIScriptAlias",
            "cannot occur inside <WSGIInterpreterOptions>; allowed there: WSGIPythonPath",
        ],
    );
    rejects(
        "<WSGIInterpreterOptions application-group=x>\n\
         WSGIRestrictStdin maybe\n</WSGIInterpreterOptions>\n",
        &["WSGIRestrictStdin", "On or Off", "maybe"],
    );
}
