//! README's directive table says, for each directive, what the code says.
//! `cargo test --release --test readme -- --ignored` rewrites the table.

use mod_wsgi_rs::config::{Context, DIRECTIVES, Status};

const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
const HEADER: &str = "| directive | where | implemented |\n|---|---|---|\n";

fn table() -> String {
    let mut out = String::from(HEADER);
    for spec in DIRECTIVES {
        let place = match spec.context {
            Context::ServerOnly => "server",
            Context::ServerVhost => "server, vhost",
            Context::ServerVhostDir => "server, vhost, directory",
            Context::ServerVhostDirHtaccess => "server, vhost, directory, .htaccess",
            Context::DirHtaccessAuth => "directory, .htaccess",
        };
        let status = match spec.status {
            Status::Implemented => "yes".to_string(),
            Status::NotYet(why) => format!("not yet: {why}"),
        };
        out.push_str(&format!("| `{}` | {place} | {status} |\n", spec.name));
    }
    out
}

/// The README with its table replaced by the current one.
fn rewritten(readme: &str) -> String {
    let start = readme
        .find(HEADER)
        .expect("README has the directive table header");
    let rest = &readme[start..];
    let end = rest.find("\n\n").map_or(readme.len(), |e| start + e + 1);
    format!("{}{}{}", &readme[..start], table(), &readme[end..])
}

#[test]
fn directive_table_matches_the_code() {
    let readme = std::fs::read_to_string(README).unwrap();
    assert!(
        rewritten(&readme) == readme,
        "README's directive table is stale: run `cargo test --release --test readme -- --ignored`"
    );
    assert_eq!(DIRECTIVES.len(), 49);
}

#[test]
#[ignore]
fn regenerate_directive_table() {
    let readme = std::fs::read_to_string(README).unwrap();
    std::fs::write(README, rewritten(&readme)).unwrap();
}
