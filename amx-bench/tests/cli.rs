//! The `amx-bench` binary's exit status and messages for `verify` and `gguf` on bad
//! input: a folder that does not exist or holds no vector fails, a malformed vector is
//! one failure among the others, and `gguf` refuses what is not a regular file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_amx-bench")).args(args).output().expect("run amx-bench")
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// A fresh directory under the system temp directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let path = std::env::temp_dir().join(format!("amx-bench-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a scratch directory");
        Scratch(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temp path")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A mistyped folder used to print "0 passed, 0 failed" and exit 0.
#[test]
fn verify_fails_on_a_missing_folder() {
    let out = run(&["verify", "/nonexistent/amx-rs/vectorz"]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains("vector folder /nonexistent/amx-rs/vectorz does not exist"),
        "{stderr}"
    );
    assert!(!stdout.contains("0 passed"), "{stdout}");
}

/// An empty folder used to print "0 passed, 0 failed" and exit 0.
#[test]
fn verify_fails_on_a_folder_without_vectors() {
    let dir = Scratch::new("empty");
    std::fs::write(dir.0.join("readme.txt"), b"no vectors here").unwrap();
    let out = run(&["verify", dir.path()]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("no vector") && stderr.contains(dir.path()), "{stderr}");
}

/// One malformed vector used to abort the run with no result for the others.
#[test]
fn verify_reports_a_malformed_vector_and_checks_the_others() {
    let dir = Scratch::new("mixed");
    let good =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/q4_0_m1_n64_k256_plain.gguf");
    std::fs::copy(good, dir.0.join("a_good.gguf")).unwrap();
    std::fs::write(dir.0.join("b_bad.gguf"), b"not a gguf file").unwrap();
    let out = run(&["verify", dir.path()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("FAIL b_bad.gguf load: ") && stdout.contains("not a GGUF file"),
        "{stdout}"
    );
    assert!(stdout.contains("pass a_good.gguf pack-unpack"), "{stdout}");
    assert!(stdout.lines().last().is_some_and(|l| l.ends_with(" passed, 1 failed")), "{stdout}");
}

/// The repository's vectors still pass (exit 0).
#[test]
fn verify_passes_on_the_repository_vectors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors");
    let out = run(&["verify", dir.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.lines().last().is_some_and(|l| l.ends_with(" passed, 0 failed")), "{stdout}");
}

/// `gguf /dev/zero` used to read until memory ran out.
#[cfg(target_os = "linux")]
#[test]
fn gguf_refuses_dev_zero() {
    let out = run(&["gguf", "/dev/zero"]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "amx-bench gguf: /dev/zero is a character device, not a regular file"
    );
}
