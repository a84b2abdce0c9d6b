//! The table of all mod_wsgi directives, in the order the Apache edge
//! registers them. `apply` is called with an index into [`DIRECTIVES`].
//!
//! Every directive mod_wsgi 6.0.5 knows is listed, even when the feature
//! behind it is not built yet: an existing configuration must still load
//! (and be validated), and [`Status::NotYet`] says what the directive will
//! not do so the edge can warn once at startup.

/// Where Apache allows a directive (mapped by the edge to `req_override`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// Main server config only (RSRC_CONF, and refused in `<VirtualHost>`).
    ServerOnly,
    /// Server config and `<VirtualHost>` (RSRC_CONF).
    ServerVhost,
    /// Server, vhost and `<Directory>`/`<Location>` (RSRC_CONF | ACCESS_CONF).
    ServerVhostDir,
    /// Everywhere, including .htaccess with AllowOverride FileInfo (OR_FILEINFO).
    ServerVhostDirHtaccess,
    /// `<Directory>`/`<Location>` and .htaccess with AllowOverride AuthConfig (OR_AUTHCFG).
    DirHtaccessAuth,
}

pub use super::args::ArgShape;

/// Whether mod_wsgi_rs does what the directive asks for yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Implemented,
    /// Accepted and validated, but the feature is missing: one short phrase.
    NotYet(&'static str),
}

/// One row of [`DIRECTIVES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectiveSpec {
    pub name: &'static str,
    pub context: Context,
    /// How the argument line is split (by Apache, or raw by us as mod_wsgi does).
    pub kind: ArgShape,
    pub status: Status,
    /// Syntax line shown by Apache (e.g. in `httpd -L`).
    pub help: &'static str,
}

// What is missing, shared by the directives that wait for the same feature.
// Flip a directive to `Implemented` in the table below when it works; these
// phrases and the table are the only place status lives.
const PER_INTERPRETER_GIL: Status = Status::NotYet(
    "sub-interpreters share one GIL (as with mod_wsgi's default); a GIL per interpreter is not built yet",
);

use ArgShape::*;
use Context::*;
use Status::Implemented;

const fn d(
    name: &'static str,
    context: Context,
    status: Status,
    help: &'static str,
) -> DirectiveSpec {
    DirectiveSpec {
        name,
        context,
        kind: Words,
        status,
        help,
    }
}

/// A directive whose `name=value` options mod_wsgi reads from the raw line
/// after `leading` words.
const fn o(
    leading: usize,
    name: &'static str,
    context: Context,
    status: Status,
    help: &'static str,
) -> DirectiveSpec {
    DirectiveSpec {
        kind: Options { leading },
        ..d(name, context, status, help)
    }
}

/// All 49 directives, in mod_wsgi-compat.md order. The order is part of the
/// contract: the edge passes the index to `apply`.
pub static DIRECTIVES: &[DirectiveSpec] = &[
    // Mapping requests and choosing where they run.
    o(
        2,
        "WSGIScriptAlias",
        ServerVhost,
        Implemented,
        "WSGIScriptAlias url-path file-or-dir [process-group=G] [application-group=A] [callable-object=C] [pass-authorization=On|Off]",
    ),
    o(
        2,
        "WSGIScriptAliasMatch",
        ServerVhost,
        Implemented,
        "WSGIScriptAliasMatch regex file-path-with-$N [process-group=G] [application-group=A] [callable-object=C] [pass-authorization=On|Off]",
    ),
    o(
        1,
        "WSGIDaemonProcess",
        ServerVhost,
        Implemented,
        "WSGIDaemonProcess name [option=value ...]",
    ),
    d(
        "WSGIProcessGroup",
        ServerVhostDir,
        Implemented,
        "WSGIProcessGroup name|%{GLOBAL}|%{ENV:var}",
    ),
    d(
        "WSGIApplicationGroup",
        ServerVhostDir,
        Implemented,
        "WSGIApplicationGroup name|%{GLOBAL}|%{RESOURCE}|%{SERVER}|%{HOST}|%{ENV:var}",
    ),
    d(
        "WSGICallableObject",
        ServerVhostDirHtaccess,
        Implemented,
        "WSGICallableObject name (default: application)",
    ),
    d(
        "WSGIRestrictProcess",
        ServerVhostDir,
        Implemented,
        "WSGIRestrictProcess group [group ...]",
    ),
    d(
        "WSGIRestrictEmbedded",
        ServerOnly,
        Implemented,
        "WSGIRestrictEmbedded On|Off",
    ),
    o(
        1,
        "WSGIImportScript",
        ServerOnly,
        Implemented,
        "WSGIImportScript path process-group=G application-group=A",
    ),
    o(
        1,
        "WSGIDispatchScript",
        ServerVhostDirHtaccess,
        Status::Implemented,
        "WSGIDispatchScript path [process-group=G] [application-group=A]",
    ),
    o(
        2,
        "WSGIHandlerScript",
        ServerVhostDirHtaccess,
        Status::Implemented,
        "WSGIHandlerScript name path [process-group=G] [application-group=A] [pass-authorization=On|Off]",
    ),
    // Python.
    d(
        "WSGIPythonHome",
        ServerOnly,
        Implemented,
        "WSGIPythonHome prefix-or-venv-root",
    ),
    d(
        "WSGIPythonPath",
        ServerOnly,
        Implemented,
        "WSGIPythonPath dir[:dir ...]",
    ),
    d(
        "WSGIPythonOptimize",
        ServerOnly,
        Implemented,
        "WSGIPythonOptimize 0|1|2",
    ),
    d(
        "WSGIPythonHashSeed",
        ServerOnly,
        Implemented,
        "WSGIPythonHashSeed random|0..4294967295",
    ),
    d(
        "WSGIPythonWarnings",
        ServerOnly,
        Implemented,
        "WSGIPythonWarnings filter",
    ),
    d(
        "WSGIPythonEggs",
        ServerOnly,
        Implemented,
        "WSGIPythonEggs dir",
    ),
    d(
        "WSGIDontWriteBytecode",
        ServerOnly,
        Implemented,
        "WSGIDontWriteBytecode On|Off",
    ),
    d(
        "WSGIDestroyInterpreter",
        ServerOnly,
        Implemented,
        "WSGIDestroyInterpreter On|Off",
    ),
    d(
        "WSGISwitchInterval",
        ServerOnly,
        Implemented,
        "WSGISwitchInterval seconds",
    ),
    d(
        "WSGIPerInterpreterGIL",
        ServerOnly,
        PER_INTERPRETER_GIL,
        "WSGIPerInterpreterGIL On|Off",
    ),
    d(
        "WSGIFreeThreading",
        ServerOnly,
        Implemented,
        "WSGIFreeThreading On|Off",
    ),
    DirectiveSpec {
        name: "<WSGIInterpreterOptions",
        context: ServerOnly,
        kind: Section,
        status: Implemented,
        help: "<WSGIInterpreterOptions [process-group=G] [application-group=A]> ... </WSGIInterpreterOptions>",
    },
    d(
        "WSGIRestrictStdin",
        ServerOnly,
        Implemented,
        "WSGIRestrictStdin On|Off",
    ),
    d(
        "WSGIRestrictStdout",
        ServerOnly,
        Implemented,
        "WSGIRestrictStdout On|Off",
    ),
    d(
        "WSGIRestrictSignal",
        ServerOnly,
        Implemented,
        "WSGIRestrictSignal On|Off",
    ),
    d(
        "WSGICaseSensitivity",
        ServerOnly,
        Implemented,
        "WSGICaseSensitivity On|Off",
    ),
    // Request handling.
    d(
        "WSGIPassAuthorization",
        ServerVhostDirHtaccess,
        Implemented,
        "WSGIPassAuthorization On|Off",
    ),
    d(
        "WSGIScriptReloading",
        ServerVhostDirHtaccess,
        Implemented,
        "WSGIScriptReloading On|Off",
    ),
    d(
        "WSGIErrorOverride",
        ServerVhostDirHtaccess,
        Implemented,
        "WSGIErrorOverride On|Off",
    ),
    d(
        "WSGIChunkedRequest",
        ServerVhostDirHtaccess,
        Implemented,
        "WSGIChunkedRequest On|Off",
    ),
    d(
        "WSGIMapHEADToGET",
        ServerVhostDirHtaccess,
        Implemented,
        "WSGIMapHEADToGET On|Off|Auto",
    ),
    d(
        "WSGIIgnoreActivity",
        ServerVhostDirHtaccess,
        Implemented,
        "WSGIIgnoreActivity On|Off",
    ),
    d(
        "WSGIEnableSendfile",
        ServerVhostDirHtaccess,
        Implemented,
        "WSGIEnableSendfile On|Off",
    ),
    d(
        "WSGITrustedProxyHeaders",
        ServerVhostDirHtaccess,
        Implemented,
        "WSGITrustedProxyHeaders header [header ...]",
    ),
    d(
        "WSGITrustedProxies",
        ServerVhostDirHtaccess,
        Implemented,
        "WSGITrustedProxies address-or-cidr [address-or-cidr ...]",
    ),
    d(
        "WSGIPassApacheRequest",
        ServerVhostDir,
        Implemented,
        "WSGIPassApacheRequest On|Off",
    ),
    // Apache authentication and authorisation hooks.
    o(
        1,
        "WSGIAccessScript",
        DirHtaccessAuth,
        Implemented,
        "WSGIAccessScript path [application-group=A] [process-group=G]",
    ),
    o(
        1,
        "WSGIAuthUserScript",
        DirHtaccessAuth,
        Implemented,
        "WSGIAuthUserScript path [application-group=A] [process-group=G]",
    ),
    o(
        1,
        "WSGIAuthGroupScript",
        DirHtaccessAuth,
        Implemented,
        "WSGIAuthGroupScript path [application-group=A] [process-group=G]",
    ),
    d(
        "WSGIGroupAuthoritative",
        DirHtaccessAuth,
        Implemented,
        "WSGIGroupAuthoritative On|Off",
    ),
    // Daemon plumbing, metrics, misc.
    d(
        "WSGISocketPrefix",
        ServerOnly,
        Implemented,
        "WSGISocketPrefix path",
    ),
    d(
        "WSGISocketRotation",
        ServerOnly,
        Implemented,
        "WSGISocketRotation On|Off",
    ),
    d(
        "WSGIAcceptMutex",
        ServerOnly,
        Implemented,
        "WSGIAcceptMutex default|flock|fcntl|sysvsem|posixsem|pthread",
    ),
    d(
        "WSGIServerMetrics",
        ServerOnly,
        Implemented,
        "WSGIServerMetrics On|Off",
    ),
    d(
        "WSGISlowRequests",
        ServerOnly,
        Implemented,
        "WSGISlowRequests seconds",
    ),
    d(
        "WSGITelemetryService",
        ServerOnly,
        Implemented,
        "WSGITelemetryService unix:/path [interval=seconds]",
    ),
    d(
        "WSGITelemetryOptions",
        ServerOnly,
        Implemented,
        "WSGITelemetryOptions [+|-]Flag ... | None | All",
    ),
    d(
        "WSGIVerboseDebugging",
        ServerOnly,
        Implemented,
        "WSGIVerboseDebugging On|Off (no effect; use LogLevel wsgi:debug)",
    ),
];

/// Position of `name` in [`DIRECTIVES`] (exact, case-sensitive).
pub fn index_of(name: &str) -> Option<usize> {
    DIRECTIVES.iter().position(|d| d.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forty_nine_unique_directives() {
        assert_eq!(DIRECTIVES.len(), 49);
        for (i, d) in DIRECTIVES.iter().enumerate() {
            assert_eq!(index_of(d.name), Some(i), "duplicate {}", d.name);
            assert!(
                d.help.contains(d.name.trim_start_matches('<')),
                "{}",
                d.name
            );
            if let Status::NotYet(why) = d.status {
                assert!(!why.is_empty());
            }
        }
    }

    #[test]
    fn only_the_interpreter_options_section_is_a_section() {
        let sections: Vec<_> = DIRECTIVES
            .iter()
            .filter(|d| d.kind == Section)
            .map(|d| d.name)
            .collect();
        assert_eq!(sections, ["<WSGIInterpreterOptions"]);
    }

    #[test]
    fn implemented_set() {
        let implemented: Vec<_> = DIRECTIVES
            .iter()
            .filter(|d| d.status == Status::Implemented)
            .map(|d| d.name)
            .collect();
        assert_eq!(
            implemented,
            [
                "WSGIScriptAlias",
                "WSGIScriptAliasMatch",
                "WSGIDaemonProcess",
                "WSGIProcessGroup",
                "WSGIApplicationGroup",
                "WSGICallableObject",
                "WSGIRestrictProcess",
                "WSGIRestrictEmbedded",
                "WSGIImportScript",
                "WSGIDispatchScript",
                "WSGIHandlerScript",
                "WSGIPythonHome",
                "WSGIPythonPath",
                "WSGIPythonOptimize",
                "WSGIPythonHashSeed",
                "WSGIPythonWarnings",
                "WSGIPythonEggs",
                "WSGIDontWriteBytecode",
                "WSGIDestroyInterpreter",
                "WSGISwitchInterval",
                "WSGIFreeThreading",
                "<WSGIInterpreterOptions",
                "WSGIRestrictStdin",
                "WSGIRestrictStdout",
                "WSGIRestrictSignal",
                "WSGICaseSensitivity",
                "WSGIPassAuthorization",
                "WSGIScriptReloading",
                "WSGIErrorOverride",
                "WSGIChunkedRequest",
                "WSGIMapHEADToGET",
                "WSGIIgnoreActivity",
                "WSGIEnableSendfile",
                "WSGITrustedProxyHeaders",
                "WSGITrustedProxies",
                "WSGIPassApacheRequest",
                "WSGIAccessScript",
                "WSGIAuthUserScript",
                "WSGIAuthGroupScript",
                "WSGIGroupAuthoritative",
                "WSGISocketPrefix",
                "WSGISocketRotation",
                "WSGIAcceptMutex",
                "WSGIServerMetrics",
                "WSGISlowRequests",
                "WSGITelemetryService",
                "WSGITelemetryOptions",
                "WSGIVerboseDebugging"
            ]
        );
    }

    #[test]
    fn contexts_follow_the_reference() {
        let ctx = |n| DIRECTIVES[index_of(n).unwrap()].context;
        assert_eq!(ctx("WSGIDaemonProcess"), Context::ServerVhost);
        assert_eq!(ctx("WSGIProcessGroup"), Context::ServerVhostDir);
        assert_eq!(ctx("WSGICallableObject"), Context::ServerVhostDirHtaccess);
        assert_eq!(ctx("WSGIImportScript"), Context::ServerOnly);
        assert_eq!(ctx("WSGIAccessScript"), Context::DirHtaccessAuth);
        assert_eq!(ctx("WSGIPassApacheRequest"), Context::ServerVhostDir);
        assert_eq!(ctx("<WSGIInterpreterOptions"), Context::ServerOnly);
    }
}
