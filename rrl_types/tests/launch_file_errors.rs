//! Every broken launch file under `bad_launch_files/` is refused with the
//! location, field path and message its first line expects:
//! `// expect LINE:COL PATH | MESSAGE FRAGMENT`.

use std::path::{Path, PathBuf};

use rrl_types::config::LaunchFile;

struct Expectation {
    line: usize,
    column: usize,
    path: String,
    fragment: String,
}

fn expectation(text: &str, file: &Path) -> Expectation {
    let header = text.lines().next().and_then(|l| l.strip_prefix("// expect ")).unwrap_or_else(|| panic!("{}: no `// expect` header", file.display()));
    let (location_and_path, fragment) = header.split_once(" | ").unwrap_or((header.trim_end_matches(" |"), ""));
    let mut parts = location_and_path.split_whitespace();
    let location = parts.next().unwrap();
    let (line, column) = location.split_once(':').unwrap();
    Expectation {
        line: line.parse().unwrap(),
        column: column.parse().unwrap(),
        path: parts.next().unwrap_or("").to_string(),
        fragment: fragment.trim().to_string(),
    }
}

fn bad_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_launch_files");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

#[test]
fn there_are_at_least_ten_broken_files() {
    assert!(bad_files().len() >= 10);
}

#[test]
fn each_broken_file_is_refused_at_the_expected_place() {
    let mut failures = Vec::new();
    for file in bad_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let want = expectation(&text, &file);
        let err = match LaunchFile::load(&file) {
            Ok(_) => {
                failures.push(format!("{}: accepted", file.display()));
                continue;
            }
            Err(err) => err,
        };
        let problem = err.problems().first().unwrap_or_else(|| panic!("{}: no located problem in {err}", file.display()));
        let rendered = problem.to_string();
        let ok = problem.line == want.line
            && problem.column == want.column
            && problem.path == want.path
            && rendered.contains(&want.fragment)
            && rendered.starts_with(&format!("{}:{}:{}: ", file.display(), want.line, want.column));
        if !ok {
            failures.push(format!(
                "{}: expected {}:{} `{}` containing {:?}, got {}:{} `{}`: {}",
                file.display(),
                want.line,
                want.column,
                want.path,
                want.fragment,
                problem.line,
                problem.column,
                problem.path,
                rendered
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_shipped_example_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../launch/files");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "ron") {
            LaunchFile::load(&path).unwrap_or_else(|e| panic!("{e}"));
            count += 1;
        }
    }
    assert!(count >= 4, "expected an example per setup, found {count}");
}
