//! Deterministic test data shared by the unit tests of several modules, and [`skip`],
//! the one place where a test that needs a CPU feature this machine lacks skips.

extern crate std;

use std::println;
use std::vec::Vec;

use crate::formats::Format;

/// The stride of exhaustive loops (every f16 pattern, ...): 1, and a prime under Miri,
/// which runs such a loop thousands of times slower and still sees every region of it.
pub(crate) const MIRI_STRIDE: usize = if cfg!(miri) { 251 } else { 1 };

/// The formats a test that walks every format takes: all of them, or under Miri (about a
/// minute per format there for the heavy tests) one of each decoding shape: nibbles with
/// one f16 scale (Q4_0), a fifth bit from a per-row field (Q5_1), 2-bit values in 16-value
/// sub-blocks (Q2_K), 6-bit K-quant scales (Q4_K), a non-linear table (IQ4_NL), an E8M0
/// scale (MXFP4) and a float format (BF16). Natively every format runs every test.
pub(crate) fn test_formats() -> impl Iterator<Item = Format> {
    const MIRI: [Format; 7] = [
        Format::Q4_0,
        Format::Q5_1,
        Format::Q2_K,
        Format::Q4_K,
        Format::IQ4_NL,
        Format::MXFP4,
        Format::BF16,
    ];
    Format::ALL.into_iter().filter(|f| !cfg!(miri) || MIRI.contains(f))
}

/// Pseudo-random bytes (xorshift64*), the same for the same seed.
pub(crate) fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// `rows` rows of `k` values in `format`: random bytes with moderate f16 scales (block
/// formats) or values near 1 (F16/BF16), so that results compare numerically.
pub(crate) fn weights(format: Format, seed: u64, rows: usize, k: usize) -> Vec<u8> {
    let mut w = bytes(seed, rows * format.row_bytes(k).expect("k fits the block"));
    for b in w.chunks_exact_mut(format.block_bytes()) {
        for &a in format.f16_scales() {
            b[a + 1] = 0x30 | (b[a + 1] & 0x87);
        }
        for &a in format.e8m0_scales() {
            b[a] = moderate_e8m0(b[a]);
        }
    }
    if format.sub_block().is_none() {
        // F16 or BF16 values.
        for v in w.chunks_exact_mut(2) {
            v[1] = if format == Format::F16 { 0x38 | (v[1] & 0x83) } else { 0x3f | (v[1] & 0x80) };
        }
    }
    w
}

/// A moderate E8M0 scale from a random byte: exponent byte 120..=135, a scale of
/// `2^-8 ..= 2^7` (the range the f16 scales of test data get).
pub(crate) fn moderate_e8m0(b: u8) -> u8 {
    120 + (b & 0x0f)
}

pub(crate) use crate::require::{Need, REQUIRE_VAR};

/// Whether `need` is required by `list` (an `AMX_RS_REQUIRE` value; `None`: unset).
/// Panics on an unknown name.
pub(crate) fn required_by(list: Option<&str>, need: Need) -> bool {
    match list.map(|list| crate::require::requires(list, need)) {
        None => false,
        Some(Ok(required)) => required,
        Some(Err(name)) => {
            panic!(
                "{REQUIRE_VAR}: unknown feature {name:?} (known: {})",
                crate::require::KnownNames
            )
        }
    }
}

/// Skips a test that needs what this machine lacks: prints `skipped: {why}`, or fails the
/// test when `AMX_RS_REQUIRE` requires `need`. Under Miri, which has no AMX or AVX-512
/// (its detection reports none), the switch does not apply.
pub(crate) fn skip(need: Need, why: &str) {
    let list = if cfg!(miri) { None } else { std::env::var(REQUIRE_VAR).ok() };
    skip_under(list.as_deref(), need, why);
}

/// [`skip`] with the value of `AMX_RS_REQUIRE` given (`None`: unset).
fn skip_under(list: Option<&str>, need: Need, why: &str) {
    assert!(
        !required_by(list, need),
        "{why}, but {REQUIRE_VAR} requires {:?} (this machine should have it)",
        need.name()
    );
    println!("skipped: {why}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "unknown feature \"vnnni\" (known: amx,")]
    fn require_list_with_a_typo_fails() {
        required_by(Some("amx,vnnni"), Need::Vnni);
    }

    /// A typo in the variable fails the run even where nothing skips (where a skip would
    /// consult it), so CI's list is checked on every machine.
    #[test]
    #[cfg_attr(miri, ignore = "Miri ignores AMX_RS_REQUIRE")]
    fn require_variable_names_known_features() {
        if let Ok(list) = std::env::var(REQUIRE_VAR) {
            assert_eq!(crate::require::requires(&list, Need::Amx).err(), None);
        }
    }

    #[test]
    fn skip_passes_unless_required() {
        skip_under(None, Need::Amx, "no AMX");
        skip_under(Some("vnni,avx512bf16"), Need::Amx, "no AMX");
        skip_under(Some("amx"), Need::Vnni, "no AVX-512 VNNI");
    }

    #[test]
    #[should_panic(expected = "no AMX here, but AMX_RS_REQUIRE requires \"amx\"")]
    fn skip_fails_when_required() {
        skip_under(Some("amx,vnni"), Need::Amx, "no AMX here");
    }

    #[test]
    #[should_panic(expected = "requires \"avx512\"")]
    fn skip_fails_when_an_implied_feature_is_missing() {
        skip_under(Some("vnni"), Need::Avx512, "no AVX-512");
    }
}
