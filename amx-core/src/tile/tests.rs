extern crate std;
use super::*;
use std::format;

#[test]
fn new_is_palette_one_all_unused() {
    let c = TileConfig::new();
    let mut expected = [0u8; 64];
    expected[0] = 1;
    assert_eq!(c.as_bytes(), &expected);
    assert_eq!(c, TileConfig::default());
    assert_eq!(c.palette(), 1);
    assert!((0..8).all(|t| c.tile(t).is_none()));
}

#[test]
fn byte_layout_matches_the_sdm() {
    let mut c = TileConfig::new();
    for t in 0..8u8 {
        c = c.with_tile(t, t + 9, 4 * (u16::from(t) + 9)).unwrap();
    }
    let b = c.as_bytes();
    assert_eq!(b[0], 1, "palette at 0");
    assert_eq!(b[1], 0, "start_row at 1");
    assert!(b[2..16].iter().all(|&x| x == 0));
    for t in 0..8usize {
        let colsb = 4 * (t as u16 + 9);
        assert_eq!(b[16 + 2 * t], colsb as u8, "colsb low byte of tile {t}");
        assert_eq!(b[17 + 2 * t], (colsb >> 8) as u8, "colsb high byte of tile {t}");
        assert_eq!(b[48 + t], t as u8 + 9, "rows of tile {t}");
    }
    assert!(b[32..48].iter().all(|&x| x == 0));
    assert!(b[56..64].iter().all(|&x| x == 0));
    assert_eq!(c.tile(3), Some(TileShape { rows: 12, colsb: 48 }));
    assert_eq!(TileConfig::from_bytes(b), Ok(c));
    let d = c.without_tile(3).unwrap();
    assert_eq!(d.tile(3), None);
    assert_eq!((d.as_bytes()[22], d.as_bytes()[23], d.as_bytes()[51]), (0, 0, 0));
    assert_ne!(c, d);
}

#[test]
fn with_tile_refuses_bad_shapes_with_numbers() {
    let c = TileConfig::new();
    assert_eq!(c.with_tile(8, 16, 64), Err(TileConfigError::TileIndex { tile: 8 }));
    assert_eq!(c.with_tile(255, 1, 4), Err(TileConfigError::TileIndex { tile: 255 }));
    assert_eq!(c.with_tile(2, 0, 64), Err(TileConfigError::Rows { tile: 2, rows: 0 }));
    assert_eq!(c.with_tile(2, 17, 64), Err(TileConfigError::Rows { tile: 2, rows: 17 }));
    for colsb in [0, 2, 6, 63, 65, 68, 0xffff] {
        let e = Err(TileConfigError::Colsb { tile: 7, colsb });
        assert_eq!(c.with_tile(7, 16, colsb), e, "colsb {colsb}");
    }
    assert!(c.with_tile(7, 1, 4).is_ok());
    assert!(c.with_tile(0, 16, 64).is_ok());
    assert_eq!(c.without_tile(8), Err(TileConfigError::TileIndex { tile: 8 }));
    let msg = format!("{}", TileConfigError::Colsb { tile: 7, colsb: 65 });
    assert!(msg.contains("tile 7: 65 bytes per row"), "{msg}");
    let msg = format!("{}", TileConfigError::Rows { tile: 1, rows: 17 });
    assert!(msg.contains("tile 1: 17 rows"), "{msg}");
}

#[test]
fn from_bytes_refuses_what_ldtilecfg_or_the_api_would_not_accept() {
    let good = *TileConfig::new().with_tile(1, 16, 64).unwrap().as_bytes();
    let bad = |offset: usize, value: u8| {
        let mut b = good;
        b[offset] = value;
        TileConfig::from_bytes(&b)
    };
    assert_eq!(bad(0, 0), Err(TileConfigError::Palette { palette: 0 }));
    assert_eq!(bad(0, 2), Err(TileConfigError::Palette { palette: 2 }));
    assert_eq!(bad(1, 3), Err(TileConfigError::StartRow { start_row: 3 }));
    for offset in [2usize, 15, 32, 47, 56, 63] {
        let e = Err(TileConfigError::Reserved { offset: offset as u8, value: 9 });
        assert_eq!(bad(offset, 9), e, "offset {offset}");
    }
    // Half-configured tiles: rows without colsb and colsb without rows.
    assert_eq!(bad(48, 4), Err(TileConfigError::Colsb { tile: 0, colsb: 0 }));
    assert_eq!(bad(16, 4), Err(TileConfigError::Rows { tile: 0, rows: 0 }));
    assert_eq!(bad(18, 66), Err(TileConfigError::Colsb { tile: 1, colsb: 66 }));
    assert_eq!(bad(49, 17), Err(TileConfigError::Rows { tile: 1, rows: 17 }));
    assert_eq!(TileConfig::from_bytes(&[0; 64]), Err(TileConfigError::Palette { palette: 0 }));
}

#[test]
fn debug_lists_used_tiles() {
    let c = TileConfig::new().with_tile(0, 16, 64).unwrap().with_tile(5, 2, 8).unwrap();
    assert_eq!(format!("{c:?}"), "TileConfig { palette: 1, tmm0: 16x64B, tmm5: 2x8B }");
}
