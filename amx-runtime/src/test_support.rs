//! Not part of the API: the one place where the workspace's std tests (this crate's,
//! amx-bench's, amx-tests' and amx-candle's) skip a test that needs what this machine
//! lacks. amx-core, which cannot depend on this crate, has the same switch in its own
//! test support.
//!
//! A skip prints `skipped: ...` (visible with `cargo test -- --nocapture`), unless the
//! environment variable `AMX_RS_REQUIRE` names the missing feature: then the skip is a
//! test failure. CI sets it on machines that have the features, so that a broken
//! detection cannot pass as a skip. The value is a comma list of [`Need`] names, e.g.
//! `AMX_RS_REQUIRE=amx,vnni`; an unknown name fails the test that reads it.

use amx_core::gemm::Path;

/// The environment variable naming the features whose absence fails a test.
pub const REQUIRE_VAR: &str = "AMX_RS_REQUIRE";

/// What a skipping test needs, by its `AMX_RS_REQUIRE` name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// `amx`: AMX tiles, INT8 and BF16, with the permission.
    Amx,
    /// `avx512`: AVX-512 F, BW and VL.
    Avx512,
    /// `vnni`: AVX-512 VNNI (and so `avx512`).
    Vnni,
    /// `avx512bf16`: AVX-512 BF16 (and so `avx512`).
    Avx512Bf16,
    /// `valgrind`: the valgrind binary (tests running programs under it).
    Valgrind,
}

impl Need {
    /// Every need, in the order of their names in the docs.
    pub const ALL: [Need; 5] =
        [Need::Amx, Need::Avx512, Need::Vnni, Need::Avx512Bf16, Need::Valgrind];

    /// The name `AMX_RS_REQUIRE` uses.
    pub fn name(self) -> &'static str {
        match self {
            Need::Amx => "amx",
            Need::Avx512 => "avx512",
            Need::Vnni => "vnni",
            Need::Avx512Bf16 => "avx512bf16",
            Need::Valgrind => "valgrind",
        }
    }

    /// Whether requiring `self` also requires `other` (a VNNI or BF16 machine has AVX-512).
    fn implies(self, other: Need) -> bool {
        self == other || (matches!(self, Need::Vnni | Need::Avx512Bf16) && other == Need::Avx512)
    }
}

/// The needs a value of `AMX_RS_REQUIRE` lists (blanks and empty entries ignored), or an
/// error naming an unknown entry: a typo must not quietly require nothing.
pub fn parse_required(list: &str) -> Result<Vec<Need>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            Need::ALL.into_iter().find(|need| need.name() == name).ok_or_else(|| {
                let known: Vec<&str> = Need::ALL.iter().map(|n| n.name()).collect();
                format!("{REQUIRE_VAR}: unknown feature {name:?} (known: {})", known.join(", "))
            })
        })
        .collect()
}

/// Whether `need` is required by `list` (an `AMX_RS_REQUIRE` value; `None`: unset).
/// Panics on an unknown name.
pub fn required_by(list: Option<&str>, need: Need) -> bool {
    match list.map(parse_required) {
        None => false,
        Some(Ok(listed)) => listed.iter().any(|l| l.implies(need)),
        Some(Err(e)) => panic!("{e}"),
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

    #[test]
    fn require_list_parses_names_blanks_and_implications() {
        assert_eq!(parse_required(""), Ok(vec![]));
        assert_eq!(parse_required(" amx , vnni,,"), Ok(vec![Need::Amx, Need::Vnni]));
        let all = "amx,avx512,vnni,avx512bf16,valgrind";
        assert_eq!(parse_required(all), Ok(Need::ALL.to_vec()));
        let e = parse_required("amx,vnnni").unwrap_err();
        assert!(e.contains("unknown feature \"vnnni\"") && e.contains("known: amx,"), "{e}");
        assert!(required_by(Some("vnni"), Need::Avx512));
        assert!(required_by(Some("avx512bf16"), Need::Avx512));
        assert!(!required_by(Some("avx512"), Need::Vnni));
        assert!(!required_by(Some("vnni"), Need::Amx));
        assert!(!required_by(None, Need::Amx));
        assert!(!required_by(Some(""), Need::Amx));
    }

    /// A typo in the variable fails the run even where nothing skips.
    #[test]
    fn require_variable_names_known_features() {
        if let Some(list) = require_list() {
            assert_eq!(parse_required(&list).err(), None);
        }
    }

    #[test]
    #[should_panic(expected = "unknown feature")]
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
