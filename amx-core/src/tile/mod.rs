//! The 64-byte palette-1 tile configuration ([`TileConfig`]) and, on `x86_64`, the AMX
//! instructions as `asm!` wrappers (AMX intrinsics are unstable on stable Rust).
//!
//! Palette 1 has 8 tile registers `tmm0..tmm7`, each up to 16 rows of up to 64 bytes.
//! A `TileConfig` can only be built through validating constructors, so loading one with
//! `ldtilecfg` never raises #GP; [`crate::token::Amx::load_config`] is therefore safe.
//! The tile instructions themselves are `unsafe fn`s: whether an operation is valid
//! depends on the configuration loaded on the calling thread, which the compiler cannot
//! see.

use core::fmt;

#[cfg(target_arch = "x86_64")]
mod asm;
#[cfg(target_arch = "x86_64")]
pub use asm::{
    ldtilecfg, sttilecfg, tdpbf16ps, tdpbssd, tdpbsud, tdpbusd, tdpbuud, tileloadd, tileloaddt1,
    tilerelease, tilestored, tilezero,
};

/// Byte offset of the palette id.
const PALETTE: usize = 0;
/// Byte offset of `start_row`.
const START_ROW: usize = 1;
/// Byte offset of `colsb[0]` (16 little-endian `u16`, bytes 16..48).
const COLSB: usize = 16;
/// Byte offset of `rows[0]` (16 bytes, 48..64).
const ROWS: usize = 48;

/// The 64-byte `ldtilecfg` operand for palette 1, laid out as the Intel SDM fixes it:
///
/// | bytes  | field                                                     |
/// |--------|-----------------------------------------------------------|
/// | 0      | `palette_id` = 1                                          |
/// | 1      | `start_row` = 0                                           |
/// | 2..16  | reserved, zero                                            |
/// | 16..48 | `colsb[16]`: bytes per row of tile *i* at 16 + 2*i, `u16` LE (tiles 8..16 zero) |
/// | 48..64 | `rows[16]`: rows of tile *i* at 48 + *i* (tiles 8..16 zero) |
///
/// A tile with rows = colsb = 0 is unused. Every value of this type passes the checks
/// `ldtilecfg` makes; equality compares all 64 bytes, so a runtime can skip
/// `ldtilecfg` when the thread already holds an equal configuration.
#[repr(C, align(64))]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileConfig {
    bytes: [u8; 64],
}

const _: () = assert!(core::mem::size_of::<TileConfig>() == 64);
const _: () = assert!(core::mem::align_of::<TileConfig>() == 64);

/// The shape of one configured tile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TileShape {
    /// Number of rows, 1..=16.
    pub rows: u8,
    /// Bytes per row, 4..=64, a multiple of 4.
    pub colsb: u16,
}

/// Why a tile configuration was refused.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TileConfigError {
    /// Tile register number not below [`TileConfig::MAX_TILES`] (8).
    TileIndex {
        /// The tile number given.
        tile: u8,
    },
    /// Rows not in 1..=[`TileConfig::MAX_ROWS`] (16).
    Rows {
        /// The tile number.
        tile: u8,
        /// The rows given.
        rows: u8,
    },
    /// Bytes per row not in 4..=[`TileConfig::MAX_COLSB`] (64) or not a multiple of 4.
    Colsb {
        /// The tile number.
        tile: u8,
        /// The bytes per row given.
        colsb: u16,
    },
    /// Palette id other than 1 (0 means "no configuration").
    Palette {
        /// The palette id found.
        palette: u8,
    },
    /// `start_row` other than 0.
    StartRow {
        /// The value found.
        start_row: u8,
    },
    /// A reserved byte (2..16, or a field of tiles 8..16) that is not zero.
    Reserved {
        /// Its offset in the 64 bytes.
        offset: u8,
        /// Its value.
        value: u8,
    },
}

impl fmt::Display for TileConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TileConfigError::TileIndex { tile } => {
                write!(f, "tile register {tile} does not exist (palette 1 has tiles 0..8)")
            }
            TileConfigError::Rows { tile, rows } => {
                write!(f, "tile {tile}: {rows} rows, expected 1..=16")
            }
            TileConfigError::Colsb { tile, colsb } => {
                write!(f, "tile {tile}: {colsb} bytes per row, expected a multiple of 4 in 4..=64")
            }
            TileConfigError::Palette { palette } => {
                write!(f, "palette id {palette}, expected 1")
            }
            TileConfigError::StartRow { start_row } => {
                write!(f, "start_row {start_row}, expected 0")
            }
            TileConfigError::Reserved { offset, value } => {
                write!(f, "reserved byte {offset} is {value:#04x}, expected 0")
            }
        }
    }
}

impl core::error::Error for TileConfigError {}

/// Checks one tile's shape against palette 1 and the dot-product instructions' needs.
const fn check_shape(tile: u8, rows: u8, colsb: u16) -> Result<(), TileConfigError> {
    if tile as usize >= TileConfig::MAX_TILES {
        Err(TileConfigError::TileIndex { tile })
    } else if rows == 0 || rows as usize > TileConfig::MAX_ROWS {
        Err(TileConfigError::Rows { tile, rows })
    } else if colsb == 0 || colsb as usize > TileConfig::MAX_COLSB || !colsb.is_multiple_of(4) {
        Err(TileConfigError::Colsb { tile, colsb })
    } else {
        Ok(())
    }
}

impl TileConfig {
    /// Tile registers in palette 1.
    pub const MAX_TILES: usize = 8;
    /// Maximum rows of a tile in palette 1.
    pub const MAX_ROWS: usize = 16;
    /// Maximum bytes per row of a tile in palette 1.
    pub const MAX_COLSB: usize = 64;

    /// Palette 1 with every tile unused.
    pub const fn new() -> Self {
        let mut bytes = [0u8; 64];
        bytes[PALETTE] = 1;
        TileConfig { bytes }
    }

    /// Sets tile `tile` to `rows` rows of `colsb` bytes: `tile` < 8, 1 <= `rows` <= 16,
    /// 4 <= `colsb` <= 64 with `colsb` a multiple of 4 (the dot products work on 4-byte
    /// groups). The error names the first bad value.
    pub const fn with_tile(self, tile: u8, rows: u8, colsb: u16) -> Result<Self, TileConfigError> {
        if let Err(e) = check_shape(tile, rows, colsb) {
            return Err(e);
        }
        let mut bytes = self.bytes;
        let t = tile as usize; // < 8, checked above
        let [lo, hi] = colsb.to_le_bytes();
        bytes[COLSB + 2 * t] = lo;
        bytes[COLSB + 2 * t + 1] = hi;
        bytes[ROWS + t] = rows;
        Ok(TileConfig { bytes })
    }

    /// Marks tile `tile` (< 8) unused.
    pub const fn without_tile(self, tile: u8) -> Result<Self, TileConfigError> {
        if tile as usize >= Self::MAX_TILES {
            return Err(TileConfigError::TileIndex { tile });
        }
        let mut bytes = self.bytes;
        let t = tile as usize;
        bytes[COLSB + 2 * t] = 0;
        bytes[COLSB + 2 * t + 1] = 0;
        bytes[ROWS + t] = 0;
        Ok(TileConfig { bytes })
    }

    /// The shape of tile `tile`, or `None` when it is unused or `tile` >= 8.
    pub const fn tile(&self, tile: u8) -> Option<TileShape> {
        if tile as usize >= Self::MAX_TILES {
            return None;
        }
        let t = tile as usize;
        let rows = self.bytes[ROWS + t];
        let colsb = u16::from_le_bytes([self.bytes[COLSB + 2 * t], self.bytes[COLSB + 2 * t + 1]]);
        if rows == 0 { None } else { Some(TileShape { rows, colsb }) }
    }

    /// The palette id (always 1).
    pub const fn palette(&self) -> u8 {
        self.bytes[PALETTE]
    }

    /// The 64 bytes exactly as `ldtilecfg` reads them.
    pub const fn as_bytes(&self) -> &[u8; 64] {
        &self.bytes
    }

    /// Parses 64 configuration bytes (e.g. what `sttilecfg` stored), accepting exactly
    /// the configurations the constructors can build.
    pub const fn from_bytes(bytes: &[u8; 64]) -> Result<Self, TileConfigError> {
        if bytes[PALETTE] != 1 {
            return Err(TileConfigError::Palette { palette: bytes[PALETTE] });
        }
        if bytes[START_ROW] != 0 {
            return Err(TileConfigError::StartRow { start_row: bytes[START_ROW] });
        }
        // Reserved: 2..16, colsb of tiles 8..16 (32..48), rows of tiles 8..16 (56..64).
        let mut offset = 2;
        while offset < 64 {
            let reserved = offset < COLSB
                || (offset >= COLSB + 2 * Self::MAX_TILES && offset < ROWS)
                || offset >= ROWS + Self::MAX_TILES;
            if reserved && bytes[offset] != 0 {
                return Err(TileConfigError::Reserved {
                    offset: offset as u8,
                    value: bytes[offset],
                });
            }
            offset += 1;
        }
        let mut t = 0;
        while t < Self::MAX_TILES {
            let rows = bytes[ROWS + t];
            let colsb = u16::from_le_bytes([bytes[COLSB + 2 * t], bytes[COLSB + 2 * t + 1]]);
            if (rows != 0 || colsb != 0)
                && let Err(e) = check_shape(t as u8, rows, colsb)
            {
                return Err(e);
            }
            t += 1;
        }
        Ok(TileConfig { bytes: *bytes })
    }
}

impl Default for TileConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// Lists the used tiles, e.g. `TileConfig { palette: 1, tmm0: 16x64B, tmm1: 16x64B }`.
impl fmt::Debug for TileConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TileConfig {{ palette: {}", self.palette())?;
        for t in 0..Self::MAX_TILES as u8 {
            if let Some(s) = self.tile(t) {
                write!(f, ", tmm{t}: {}x{}B", s.rows, s.colsb)?;
            }
        }
        f.write_str(" }")
    }
}

#[cfg(test)]
mod tests;
