//! The CGI variables of a request in the Apache child: what the child
//! hands to Python whichever mode serves the request (embedded, or a daemon
//! process through `daemon::worker`), and to the dispatch script.

use crate::apache::log::Level;
use crate::apache::request::Request;

/// The CGI variables of the request, as mod_cgi would give them, with what
/// a trusted proxy says applied (`wsgi::proxy`), plus the Authorization
/// header when it is passed on purpose.
pub fn vars(
    r: &mut Request,
    pass_authorization: bool,
    proxy: &crate::wsgi::proxy::ProxyTrust,
) -> Vec<(String, String)> {
    r.add_cgi_vars();
    let mut vars: Vec<(String, String)> = r
        .subprocess_env()
        .entries()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let outcome = crate::wsgi::proxy::apply(&mut vars, proxy);
    if !outcome.unusable.is_empty() {
        r.log(
            Level::Debug,
            &format!(
                "trusted proxy header(s) {} ignored: value not usable",
                outcome.unusable.join(", ")
            ),
        );
    }
    if pass_authorization && let Some(auth) = r.headers_in().get("Authorization") {
        vars.push(("HTTP_AUTHORIZATION".into(), auth.to_string()));
    }
    // What C mod_wsgi adds on the Apache side, whichever mode runs the
    // application (docs/environ-differences.md compares the two).
    let (listener_host, listener_port) = r.listener();
    let facts = [
        (
            "mod_wsgi.request_handler",
            r.handler().unwrap_or("").to_string(),
        ),
        ("mod_wsgi.handler_script", crate::hooks::handler::noted(r)),
        ("mod_wsgi.listener_host", listener_host),
        ("mod_wsgi.listener_port", listener_port.to_string()),
        // WSGIIgnoreActivity is not applied yet: its default. Embedded
        // mode's handle() reports WSGIEnableSendfile; daemon mode streams
        // file_wrapper content, hence "0".
        ("mod_wsgi.enable_sendfile", "0".to_string()),
        ("mod_wsgi.ignore_activity", "0".to_string()),
        ("mod_wsgi.request_start", r.request_time_us().to_string()),
    ];
    vars.extend(facts.into_iter().map(|(k, v)| (k.to_string(), v)));
    if let Some(id) = r.log_id() {
        vars.push(("mod_wsgi.request_id".into(), id));
    }
    vars
}
