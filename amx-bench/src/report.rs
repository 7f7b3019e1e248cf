//! What this CPU and OS support, as lines for the main job and `amx-bench detect`.

use amx_core::detect::{Features, XCR0_XTILECFG, XCR0_XTILEDATA};
use amx_core::permission;
use amx_core::token::{Amx, Avx512Vnni};

/// The detection report: features, XCR0 state, the permission, and the tokens.
pub fn detect_lines() -> Vec<String> {
    let f = Features::detect();
    let xcr0 = f.xcr0();
    let bit = |b: u64| if xcr0 & b != 0 { "set" } else { "clear" };
    let mut lines = vec![
        format!("cpu features: {f}"),
        format!(
            "xcr0: {xcr0:#x} (bit 17 xtilecfg {}, bit 18 xtiledata {})",
            bit(XCR0_XTILECFG),
            bit(XCR0_XTILEDATA)
        ),
    ];
    lines.push(match permission::request_tile_data() {
        Ok(()) => "permission (arch_prctl XTILEDATA): granted".to_string(),
        Err(e) => format!("permission (arch_prctl XTILEDATA): refused ({e})"),
    });
    lines.push(match Amx::try_new() {
        Ok(_) => "amx: available".to_string(),
        Err(e) => format!("amx: unavailable ({e})"),
    });
    lines.push(match Avx512Vnni::try_new() {
        Ok(_) => "avx512-vnni: available".to_string(),
        Err(e) => format!("avx512-vnni: unavailable ({e})"),
    });
    lines
}
