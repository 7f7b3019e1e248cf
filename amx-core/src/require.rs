//! Not part of the API: the names of the `AMX_RS_REQUIRE` switch and how a list of them is
//! read, shared by the test support of every crate of the workspace (amx-core's own tests
//! and `amx_runtime::test_support`), so that one list means the same everywhere.
//!
//! A test that needs what the machine lacks skips; when `AMX_RS_REQUIRE` (a comma list of
//! [`Need`] names, e.g. `amx,vnni`) names what it needs, the skip is a failure instead, so
//! that a broken detection cannot pass as a skip on a machine that has the feature.

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
    pub const fn name(self) -> &'static str {
        match self {
            Need::Amx => "amx",
            Need::Avx512 => "avx512",
            Need::Vnni => "vnni",
            Need::Avx512Bf16 => "avx512bf16",
            Need::Valgrind => "valgrind",
        }
    }

    /// The need with this name (exact, lower case).
    pub fn from_name(name: &str) -> Option<Need> {
        Need::ALL.into_iter().find(|need| need.name() == name)
    }

    /// Whether requiring `self` also requires `other` (a VNNI or BF16 machine has AVX-512).
    pub const fn implies(self, other: Need) -> bool {
        matches!(
            (self, other),
            (Need::Amx, Need::Amx)
                | (Need::Avx512 | Need::Vnni | Need::Avx512Bf16, Need::Avx512)
                | (Need::Vnni, Need::Vnni)
                | (Need::Avx512Bf16, Need::Avx512Bf16)
                | (Need::Valgrind, Need::Valgrind)
        )
    }
}

/// Whether `list` (a value of `AMX_RS_REQUIRE`; blanks and empty entries ignored)
/// requires `need`, or the first entry that names no [`Need`]: a typo must not quietly
/// require nothing.
pub fn requires(list: &str, need: Need) -> Result<bool, &str> {
    let mut required = false;
    for name in list.split(',').map(str::trim).filter(|name| !name.is_empty()) {
        let listed = Need::from_name(name).ok_or(name)?;
        required |= listed.implies(need);
    }
    Ok(required)
}

/// Every [`Need`] name, comma-separated, for messages (`amx, avx512, ...`).
#[derive(Clone, Copy, Debug)]
pub struct KnownNames;

impl core::fmt::Display for KnownNames {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, need) in Need::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(need.name())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for need in Need::ALL {
            assert_eq!(Need::from_name(need.name()), Some(need));
        }
        assert_eq!(Need::from_name("AMX"), None);
    }

    #[test]
    fn lists_with_blanks_and_implications() {
        assert_eq!(requires("", Need::Amx), Ok(false));
        assert_eq!(requires(" amx , vnni,,", Need::Vnni), Ok(true));
        assert_eq!(requires(" amx , vnni,,", Need::Avx512Bf16), Ok(false));
        assert_eq!(requires("vnni", Need::Avx512), Ok(true));
        assert_eq!(requires("avx512bf16", Need::Avx512), Ok(true));
        assert_eq!(requires("avx512", Need::Vnni), Ok(false));
        assert_eq!(requires("vnni", Need::Amx), Ok(false));
        for need in Need::ALL {
            assert_eq!(requires("amx,avx512,vnni,avx512bf16,valgrind", need), Ok(true));
        }
    }

    #[test]
    fn known_names_are_listed() {
        extern crate std;
        use std::string::ToString;
        assert_eq!(KnownNames.to_string(), "amx, avx512, vnni, avx512bf16, valgrind");
    }

    #[test]
    fn an_unknown_entry_is_named() {
        assert_eq!(requires("amx,vnnni", Need::Amx), Err("vnnni"));
        assert_eq!(requires("amx, Vnni ", Need::Valgrind), Err("Vnni"));
    }
}
