//! Not part of the API: the one place where the workspace's std tests (this crate's,
//! amx-bench's, amx-tests' and amx-candle's) skip a test that needs what this machine
//! lacks. The names and how a list is read are amx-core's (`amx_core::require`), which
//! amx-core's own tests use too.
//!
//! A skip prints `skipped: ...` (visible with `cargo test -- --nocapture`), unless the
//! environment variable `AMX_RS_REQUIRE` names the missing feature: then the skip is a
//! test failure. CI sets it on machines that have the features, so that a broken
//! detection cannot pass as a skip. The value is a comma list of [`Need`] names, e.g.
//! `AMX_RS_REQUIRE=amx,vnni`; an unknown name fails the test that reads it.

use amx_core::gemm::Path;

use amx_core::require::{KnownNames, requires};
pub use amx_core::require::{Need, REQUIRE_VAR};

/// Whether `need` is required by `list` (an `AMX_RS_REQUIRE` value; `None`: unset).
/// Panics on an unknown name.
pub fn required_by(list: Option<&str>, need: Need) -> bool {
    match list.map(|list| requires(list, need)) {
        None => false,
        Some(Ok(required)) => required,
        Some(Err(name)) => panic!("{REQUIRE_VAR}: unknown feature {name:?} (known: {KnownNames})"),
    }
}

/// The value of `AMX_RS_REQUIRE` (`None` when unset, and under Miri, which has no AMX
/// or AVX-512).
pub fn require_list() -> Option<String> {
    if cfg!(miri) { None } else { std::env::var(REQUIRE_VAR).ok() }
}

/// Skips a test that needs what this machine lacks: prints `skipped: {why}`, or panics
/// (fails the test) when `AMX_RS_REQUIRE` requires `need`.
pub fn skip(need: Need, why: &str) {
    skip_under(require_list().as_deref(), need, why);
}

/// [`skip`] for a forced path [`Path::available`] refused. Panics for a path that is
/// always available (a skip there is a bug).
pub fn skip_path(path: Path) {
    skip_path_under(require_list().as_deref(), path);
}

/// [`skip`] with the value of `AMX_RS_REQUIRE` given (`None`: unset).
pub fn skip_under(list: Option<&str>, need: Need, why: &str) {
    assert!(
        !required_by(list, need),
        "{why}, but {REQUIRE_VAR} requires {:?} (this machine should have it)",
        need.name()
    );
    println!("skipped: {why}");
}

/// [`skip_path`] with the value of `AMX_RS_REQUIRE` given (`None`: unset).
pub fn skip_path_under(list: Option<&str>, path: Path) {
    // `Path` is non-exhaustive: the paths that can be missing, by what they need (AMX
    // also needs AVX-512 VNNI and BF16, which every AMX CPU has).
    let need = [(Path::Amx, Need::Amx), (Path::Vnni, Need::Vnni)]
        .into_iter()
        .find_map(|(p, need)| (p == path).then_some(need));
    let Some(need) = need else {
        panic!("the {} path is always available, yet a test skipped it", path.name());
    };
    skip_under(list, need, &format!("the {} path is not available on this machine", path.name()));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A typo in the variable fails the run even where nothing skips.
    #[test]
    fn require_variable_names_known_features() {
        if let Some(list) = require_list() {
            assert_eq!(requires(&list, Need::Amx).err(), None);
        }
    }

    #[test]
    #[should_panic(expected = "unknown feature \"vnnni\" (known: amx,")]
    fn require_list_with_a_typo_fails() {
        required_by(Some("amx,vnnni"), Need::Vnni);
    }

    #[test]
    fn skip_passes_unless_required() {
        skip_under(None, Need::Amx, "no AMX");
        skip_under(Some("vnni,avx512bf16"), Need::Amx, "no AMX");
        skip_path_under(Some("amx"), Path::Vnni);
        skip_path_under(None, Path::Amx);
    }

    #[test]
    #[should_panic(expected = "no AMX here, but AMX_RS_REQUIRE requires \"amx\"")]
    fn skip_fails_when_required() {
        skip_under(Some("amx,vnni"), Need::Amx, "no AMX here");
    }

    #[test]
    #[should_panic(expected = "the amx path is not available on this machine, but")]
    fn skipping_a_required_path_fails() {
        skip_path_under(Some("amx"), Path::Amx);
    }

    #[test]
    #[should_panic(expected = "always available")]
    fn skipping_the_scalar_path_fails() {
        skip_path_under(None, Path::Scalar);
    }
}
