//! Every rule has a fixture under `tests/fixtures/` with the exact messages it must produce.
//! `invalid/` fixtures must be refused, `warnings/` fixtures admitted with warnings.

use std::fs;
use std::path::{Path, PathBuf};

use orkestra::admission::validate::{self, Report};
use orkestra::input::load;

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(kind);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// The lines `kubectl orkestra validate` prints after the group name.
fn lines(report: &Report) -> String {
    let mut out = String::new();
    for v in &report.errors {
        out.push_str(&format!("{v}\n"));
    }
    for v in &report.warnings {
        out.push_str(&format!("{}: warning: {}\n", v.path, v.message));
    }
    out
}

fn check(path: &Path) -> Report {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let docs = load::documents(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        docs.len(),
        1,
        "{}: one document per fixture",
        path.display()
    );
    let checked = validate::check(&docs[0].value);
    // The webhook's path, from the objects' JSON text, must say exactly the same.
    let stored = checked.mutated.as_ref().unwrap_or(&docs[0].value);
    let text = serde_json::to_vec(stored).unwrap_or_default();
    assert_eq!(
        validate::validate_json(&text, None),
        checked.report,
        "{}: the text path disagrees",
        path.display()
    );
    checked.report
}

fn expected(path: &Path) -> String {
    let file = path.with_extension("expected");
    fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

#[test]
fn every_invalid_fixture_is_refused_with_its_exact_messages() {
    let files = fixtures("invalid");
    assert!(
        files.len() >= 20,
        "expected a fixture per rule, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for path in files {
        let report = check(&path);
        let got = lines(&report);
        if report.is_valid() || got != expected(&path) {
            failures.push(format!(
                "{}:\n--- expected\n{}--- got\n{got}",
                path.display(),
                expected(&path)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn warning_fixtures_are_admitted_with_their_exact_warnings() {
    for path in fixtures("warnings") {
        let report = check(&path);
        assert!(report.is_valid(), "{}: {:?}", path.display(), report.errors);
        assert_eq!(lines(&report), expected(&path), "{}", path.display());
    }
}

#[test]
fn examples_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        let report = check(&path);
        assert!(report.is_valid(), "{}: {:?}", path.display(), report.errors);
    }
}
