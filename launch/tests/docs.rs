//! The docs check: README.md and every docs/**/*.md may only link to files
//! that exist, and every `rrl` command in their fenced code blocks may only
//! use subcommands and flags the binary really has. The binary's own
//! `--help` is the truth, so the docs cannot drift from the code unnoticed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What `rrl <path> --help` lists.
#[derive(Default)]
struct Help {
    subcommands: Vec<String>,
    flags: Vec<String>,
}

/// Help outputs by subcommand path, each asked of the binary once.
#[derive(Default)]
struct Helps(HashMap<Vec<String>, Help>);

impl Helps {
    fn of(&mut self, path: &[String]) -> &Help {
        self.0.entry(path.to_vec()).or_insert_with(|| {
            let out = Command::new(env!("CARGO_BIN_EXE_rrl")).args(path).arg("--help").env("RRL_LOG", "warn").output().expect("run rrl");
            // The binary loads libtorch and ROS 2: the tests run after `source .venv/rrl.env`.
            assert!(out.status.success(), "rrl {} --help failed (is .venv/rrl.env sourced?):\n{}", path.join(" "), String::from_utf8_lossy(&out.stderr));
            parse_help(&String::from_utf8_lossy(&out.stdout))
        })
    }
}

/// clap's help: subcommands are the lines indented by exactly two spaces
/// under `Commands:`; flags are the `--name`s on lines that start with `-`
/// (option lines, not descriptions).
fn parse_help(text: &str) -> Help {
    let mut help = Help::default();
    let mut in_commands = false;
    for line in text.lines() {
        if !line.is_empty() && !line.starts_with(' ') {
            in_commands = line == "Commands:";
        } else if in_commands && line.starts_with("  ") && !line.starts_with("   ") {
            help.subcommands.extend(line.split_whitespace().next().map(str::to_string));
        }
        if line.trim_start().starts_with('-') {
            for word in line.split(|c: char| c.is_whitespace() || c == ',') {
                if let Some(name) = word.strip_prefix("--") {
                    let name: String = name.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
                    help.flags.push(format!("--{name}"));
                }
            }
        }
    }
    help
}

/// Relative link targets on `line` (code spans left out: `[a](b)` there is
/// code, not a link), without their `#anchor`; web and mail links skipped.
fn relative_links(line: &str) -> Vec<String> {
    let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
    let mut targets = Vec::new();
    for (start, _) in prose.match_indices("](") {
        let rest = &prose[start + 2..];
        let target = rest[..rest.find(')').unwrap_or(rest.len())].split_whitespace().next().unwrap_or("");
        let target = target.split('#').next().unwrap_or("").trim_matches(['<', '>']);
        if !target.is_empty() && !["http://", "https://", "mailto:"].iter().any(|scheme| target.starts_with(scheme)) {
            targets.push(target.to_string());
        }
    }
    targets
}

/// What is wrong with one shell command, if it runs `rrl`: a subcommand or
/// a `--flag` that `rrl <subcommand path> --help` does not list.
fn check_command(command: &str, helps: &mut Helps) -> Vec<String> {
    let mut words = command.split_whitespace().skip_while(|w| *w == "$" || (w.contains('=') && !w.starts_with('-'))).take_while(|w| !w.starts_with('#'));
    if !words.next().is_some_and(|w| w == "rrl" || w.ends_with("/rrl")) {
        return Vec::new();
    }
    let words: Vec<&str> = words.collect();
    // The subcommand path: words as long as the help one level up lists them.
    let mut path: Vec<String> = Vec::new();
    while let Some(word) = words.get(path.len()).filter(|w| helps.of(&path).subcommands.iter().any(|s| s == *w)) {
        path.push(word.to_string());
    }
    let help = helps.of(&path);
    let mut problems = Vec::new();
    if let Some(word) = words.get(path.len()).filter(|w| !w.starts_with('-') && !help.subcommands.is_empty()) {
        problems.push(format!("`rrl {}` has no subcommand `{word}`", path.join(" ")));
    }
    for word in words.iter().take_while(|w| **w != "--").filter(|w| w.starts_with("--")) {
        let flag = word.split('=').next().unwrap_or_default();
        if !help.flags.iter().any(|f| f == flag) {
            problems.push(format!("`rrl {}` has no flag `{flag}`", path.join(" ")));
        }
    }
    problems
}

/// Every problem in one Markdown text, as `label:line: ...`; links are
/// resolved against `dir`, the folder of the file.
fn check_markdown(label: &str, dir: &Path, text: &str, helps: &mut Helps) -> Vec<String> {
    let mut problems = Vec::new();
    let mut in_fence = false;
    // A shell command continued with `\` is checked whole, at its first line.
    let (mut pending, mut first_line) = (String::new(), 0);
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if pending.is_empty() {
            first_line = number;
        }
        if line.trim_start().starts_with("```") || line.trim_start().starts_with("~~~") {
            in_fence = !in_fence;
            continue;
        }
        if !in_fence {
            for target in relative_links(line) {
                if !dir.join(&target).exists() {
                    problems.push(format!("{label}:{number}: link to `{target}`, which does not exist"));
                }
            }
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        let full = std::mem::take(&mut pending) + line;
        for command in full.split("&&").flat_map(|c| c.split("||")).flat_map(|c| c.split(';')) {
            problems.extend(check_command(command, helps).into_iter().map(|p| format!("{label}:{first_line}: {p}")));
        }
    }
    problems
}

fn markdown_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            markdown_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "md") {
            found.push(path);
        }
    }
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn docs_link_to_existing_files_and_use_real_commands_and_flags() {
    let root = repository();
    let mut files = vec![root.join("README.md")];
    markdown_files(&root.join("docs"), &mut files);
    files.sort();
    let mut helps = Helps::default();
    let mut problems = Vec::new();
    for file in &files {
        let label = file.strip_prefix(&root).unwrap_or(file).display().to_string();
        let text = std::fs::read_to_string(file).unwrap();
        problems.extend(check_markdown(&label, file.parent().unwrap(), &text, &mut helps));
    }
    assert!(files.len() > 2, "found only {files:?}");
    assert!(problems.is_empty(), "{} problems in the docs:\n{}", problems.len(), problems.join("\n"));
}

/// The check can fail, and for the reason it names.
#[test]
fn the_docs_check_reports_broken_links_unknown_flags_and_unknown_subcommands() {
    let text = "\
See [the guide](guide/README.md#architecture), [a page](no-such-page.md#top), [web](https://example.com/x.md) and `[code](not-a-link.md)`.
```bash
scripts/rrl practice --config launch/files/sim_panda_reach.ron --no-such-flag
$ rrl bench learner --json --updates=10
cd runs && rrl bench no-such-bench
scripts/rrl doctor && rrl bc train \\
    --config x.ron --horizonn 4
```
";
    let problems = check_markdown("synthetic.md", &repository().join("docs"), text, &mut Helps::default());
    let expected = [
        ("synthetic.md:1:", "no-such-page.md"),
        ("synthetic.md:3:", "`rrl practice` has no flag `--no-such-flag`"),
        ("synthetic.md:5:", "`rrl bench` has no subcommand `no-such-bench`"),
        ("synthetic.md:6:", "`rrl bc train` has no flag `--horizonn`"),
    ];
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    for (problem, (place, says)) in problems.iter().zip(expected) {
        assert!(problem.starts_with(place) && problem.contains(says), "expected {place} … {says}, got {problem}");
    }
}
