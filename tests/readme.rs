//! README's directive table says, for each directive, what the code says.

use mod_wsgi_rs::config::{DIRECTIVES, Status};

#[test]
fn directive_table_matches_the_code() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for spec in DIRECTIVES {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", spec.name)))
            .unwrap_or_else(|| panic!("README has no row for {}", spec.name));
        match spec.status {
            Status::Implemented => assert!(
                row.ends_with("| yes |"),
                "{} is implemented: {row}",
                spec.name
            ),
            Status::NotYet(why) => {
                assert!(
                    row.contains(&format!("not yet: {why}")),
                    "{} is not yet: {row}",
                    spec.name
                )
            }
        }
    }
    assert_eq!(DIRECTIVES.len(), 49);
}
