//! Runs amx-core's `detect` example under valgrind. Valgrind hides AMX (and AVX-512) from
//! CPUID and refuses `arch_prctl(ARCH_REQ_XCOMP_PERM)` with EINVAL, so the example must
//! report `amx: unavailable (...)` and exit 0: detection and the permission request must
//! treat a refusal as "no AMX", never crash or execute an instruction valgrind lacks.
//! Skipped (with a notice) when valgrind is not on PATH.

use std::path::{Path, PathBuf};
use std::process::Command;

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// The value of `"key":"..."` in one line of cargo's JSON messages (paths on the hosts we
/// run on need no unescaping beyond `\\` and `\"`).
fn json_string(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let mut out = String::new();
    let mut chars = line[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    None
}

/// Builds the example and returns the path of its executable: taken from cargo's
/// `compiler-artifact` message, else `$CARGO_TARGET_DIR` or `<workspace>/target`, then
/// `debug/examples/detect`.
fn build_detect_example(workspace: &Path) -> PathBuf {
    let out = Command::new(env!("CARGO"))
        .current_dir(workspace)
        .args(["build", "--example", "detect", "-p", "amx-core", "--message-format=json"])
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo build --example detect failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let from_message = stdout
        .lines()
        .filter(|l| l.contains("\"reason\":\"compiler-artifact\""))
        .filter(|l| l.contains("\"kind\":[\"example\"]") && l.contains("\"name\":\"detect\""))
        .find_map(|l| json_string(l, "executable"));
    from_message.map(PathBuf::from).unwrap_or_else(|| {
        let target = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) => workspace.join(dir), // joining an absolute path replaces
            None => workspace.join("target"),
        };
        target.join("debug").join("examples").join("detect")
    })
}

#[test]
fn detect_example_under_valgrind_reports_amx_unavailable() {
    if !on_path("valgrind") {
        use amx_runtime::test_support::{Need, skip};
        skip(Need::Valgrind, "valgrind is not on PATH");
        return;
    }
    let workspace = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let exe = build_detect_example(&workspace);
    assert!(exe.is_file(), "example executable not found at {}", exe.display());

    let out = Command::new("valgrind")
        .args(["--error-exitcode=99", "--quiet"])
        .arg(&exe)
        .output()
        .expect("valgrind runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "detect under valgrind failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let amx: Vec<&str> = stdout.lines().filter(|l| l.starts_with("amx: ")).collect();
    assert_eq!(amx.len(), 1, "exactly one `amx:` line expected\n{stdout}");
    assert!(
        amx[0].starts_with("amx: unavailable ("),
        "valgrind cannot run AMX, yet the example said `{}`\n{stdout}",
        amx[0]
    );
    // Valgrind's answer to the permission request is a refusal, reported, not a crash.
    assert!(stdout.lines().any(|l| l.starts_with("permission request: refused (")), "{stdout}");
}

#[test]
fn json_string_reads_cargo_messages() {
    let line = r#"{"reason":"compiler-artifact","executable":"/t/a \"b\"/detect","fresh":true}"#;
    assert_eq!(json_string(line, "executable").as_deref(), Some("/t/a \"b\"/detect"));
    assert_eq!(json_string(line, "missing"), None);
    assert_eq!(json_string(r#"{"executable":null}"#, "executable"), None);
}
