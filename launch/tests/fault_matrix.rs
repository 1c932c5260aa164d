//! docs/fault-matrix.md is generated from the tests that inject faults:
//! each such test carries one line
//! `/// Fault matrix: FAULT | how it is injected | what the stack did | what the test asserts`
//! above its `fn`. This test collects them from every crate's sources,
//! renders the table, and fails when the file differs (regenerate with
//! `RRL_WRITE_FAULT_MATRIX=1 cargo test -p launch --test fault_matrix`) or
//! when a fault the stack promises to survive has no test.

use std::path::{Path, PathBuf};

/// The faults every release is tested against, in the table's order.
const PROMISED: [&str; 14] = [
    "robot silent",
    "camera stalled",
    "reward endpoint dead",
    "disk full",
    "learner killed",
    "actor killed",
    "serial unplugged",
    "garbage on the serial line",
    "NaN action",
    "NaN learner",
    "corrupt checkpoint",
    "corrupt episode file",
    "forged wire messages",
    "oversized HTTP body",
];

const MARK: &str = "/// Fault matrix: ";

#[derive(Debug, PartialEq)]
struct Row {
    fault: String,
    injected: String,
    did: String,
    asserts: String,
    test: String,
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() && !name.starts_with('.') && name != "target" {
            rust_files(&path, found);
        } else if name.ends_with(".rs") {
            found.push(path);
        }
    }
}

/// The marked tests of one source file (`label`: its path in the repository).
fn rows_of(label: &str, text: &str) -> Result<Vec<Row>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut rows = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(marked) = line.trim_start().strip_prefix(MARK) else { continue };
        let cells: Vec<&str> = marked.split(" | ").map(str::trim).collect();
        let [fault, injected, did, asserts] = cells[..] else {
            return Err(format!("{label}:{}: a fault matrix line has four cells separated by ` | `", i + 1));
        };
        let until_fn: Vec<&str> = lines[i + 1..].iter().take(30).map(|l| l.trim_start()).take_while(|l| !l.starts_with("fn ") && !l.starts_with("async fn ")).collect();
        let test = lines[i + 1 + until_fn.len()..]
            .first()
            .map(|l| l.trim_start())
            .and_then(|l| l.strip_prefix("fn ").or_else(|| l.strip_prefix("async fn ")))
            .and_then(|rest| rest.split('(').next())
            .ok_or_else(|| format!("{label}:{}: no `fn` follows the fault matrix line", i + 1))?;
        // CI runs every row's test: it must be one, and not ignored.
        if !until_fn.iter().any(|l| l.starts_with("#[test]") || l.starts_with("#[tokio::test")) || until_fn.iter().any(|l| l.starts_with("#[ignore")) {
            return Err(format!("{label}:{}: `{test}` is not a test CI runs (#[test], not #[ignore])", i + 1));
        }
        rows.push(Row { fault: fault.into(), injected: injected.into(), did: did.into(), asserts: asserts.into(), test: format!("`{label}` `{test}`") });
    }
    Ok(rows)
}

fn render(rows: &[Row]) -> String {
    let mut out = String::from(
        "# Fault matrix\n\n\
         Each row is a test that injects the fault for real (processes killed with\n\
         SIGKILL, pseudo-terminals closed, a real tmpfs filled, servers that stall)\n\
         and what it asserts. Generated from the tests' `/// Fault matrix:` lines\n\
         by `launch/tests/fault_matrix.rs`, which fails when this file is stale:\n\
         `RRL_WRITE_FAULT_MATRIX=1 cargo test -p launch --test fault_matrix`\n\
         rewrites it. CI runs every one of these tests.\n\n\
         | fault | how it is injected | what the stack did | what the test asserts | test |\n\
         | --- | --- | --- | --- | --- |\n",
    );
    for row in rows {
        out.push_str(&format!("| {} | {} | {} | {} | {} |\n", row.fault, row.injected, row.did, row.asserts, row.test));
    }
    out
}

fn collect() -> Vec<Row> {
    let root = repository();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files.sort();
    let mut rows = Vec::new();
    for file in files {
        let label = file.strip_prefix(&root).unwrap().display().to_string();
        // This file names the mark in its docs; it marks no test.
        if label.ends_with("launch/tests/fault_matrix.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        rows.extend(rows_of(&label, &text).unwrap_or_else(|e| panic!("{e}")));
    }
    // The promised faults first, in their order; then the others by name.
    let rank = |fault: &str| PROMISED.iter().position(|p| *p == fault).unwrap_or(PROMISED.len());
    rows.sort_by(|a, b| (rank(&a.fault), &a.fault, &a.test).cmp(&(rank(&b.fault), &b.fault, &b.test)));
    rows
}

#[test]
fn the_fault_matrix_in_the_docs_is_generated_from_the_tests_and_covers_every_promised_fault() {
    let rows = collect();
    let missing: Vec<&str> = PROMISED.iter().copied().filter(|f| !rows.iter().any(|r| r.fault == *f)).collect();
    assert!(missing.is_empty(), "no test injects: {missing:?}");
    let rendered = render(&rows);
    let path = repository().join("docs/fault-matrix.md");
    if std::env::var_os("RRL_WRITE_FAULT_MATRIX").is_some() {
        std::fs::write(&path, &rendered).unwrap();
    }
    let written = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(written == rendered, "docs/fault-matrix.md is stale: run RRL_WRITE_FAULT_MATRIX=1 cargo test -p launch --test fault_matrix");
}

#[test]
fn a_marked_line_names_its_test_and_a_malformed_one_is_refused_with_its_place() {
    let text = "/// Fault matrix: disk full | a tmpfs filled | pauses | resumes\n#[test]\nfn survives_a_full_disk() {}\n";
    let rows = rows_of("x/tests/a.rs", text).unwrap();
    assert_eq!(rows, [Row { fault: "disk full".into(), injected: "a tmpfs filled".into(), did: "pauses".into(), asserts: "resumes".into(), test: "`x/tests/a.rs` `survives_a_full_disk`".into() }]);
    let err = rows_of("x/tests/b.rs", "\n/// Fault matrix: disk full | three cells | only\nfn f() {}\n").unwrap_err();
    assert!(err.contains("x/tests/b.rs:2") && err.contains("four cells"), "{err}");
    let err = rows_of("x/tests/c.rs", "/// Fault matrix: a | b | c | d\n").unwrap_err();
    assert!(err.contains("no `fn` follows"), "{err}");
    let err = rows_of("x/tests/d.rs", "/// Fault matrix: a | b | c | d\n#[test]\n#[ignore = \"slow\"]\nfn slow() {}\n").unwrap_err();
    assert!(err.contains("`slow` is not a test CI runs"), "{err}");
    let err = rows_of("x/tests/e.rs", "/// Fault matrix: a | b | c | d\nfn helper() {}\n").unwrap_err();
    assert!(err.contains("`helper` is not a test CI runs"), "{err}");
}
