//! One measured line of the `bench` subcommand, as text or JSON, with the peak it is
//! compared against.

use amx_core::formats::Format;

use super::Column;
use crate::peak::{Unit, peak_ops_on};

/// The tile unit's peaks measured in the same run on the same number of threads, GOPS.
#[derive(Clone, Copy, Debug)]
pub struct Peak {
    /// `tdpbssd` loop.
    pub int8: f64,
    /// `tdpbf16ps` loop.
    pub bf16: f64,
}

impl Peak {
    /// Both peaks on `threads` threads at once (NaN without AMX).
    pub fn measure(threads: usize) -> Peak {
        let ops = |unit| peak_ops_on(unit, 200_000, threads).unwrap_or(f64::NAN) / 1e9;
        Peak { int8: ops(Unit::Int8), bf16: ops(Unit::Bf16) }
    }

    /// The peak a format is held to: the int8 one for the block formats (their natural
    /// instruction is `tdpbssd`), the BF16 one for F16 and BF16.
    pub fn for_format(&self, format: Format) -> f64 {
        match format {
            Format::F16 | Format::BF16 => self.bf16,
            _ => self.int8,
        }
    }

    /// Which peak [`Peak::for_format`] picks, as a word.
    pub fn unit_name(format: Format) -> &'static str {
        match format {
            Format::F16 | Format::BF16 => "bf16",
            _ => "int8",
        }
    }
}

/// One line of the throughput output.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    /// Weight format.
    pub format: Format,
    /// What was measured.
    pub column: Column,
    /// Rows.
    pub m: usize,
    /// Columns.
    pub n: usize,
    /// Values per row.
    pub k: usize,
    /// Threads.
    pub threads: usize,
    /// Measured GOPS.
    pub gops: f64,
    /// The tile unit's peaks this run, on `threads` threads.
    pub peak_gops: Peak,
    /// The read-bandwidth bound of this case, when measured (`--dram`).
    pub bound_gops: Option<f64>,
}

impl Row {
    /// One JSON object: format, path (the column's name), m, n, k, threads, gops,
    /// peak_fraction (of [`Peak::for_format`]), and with a measured bound also
    /// bound_gops and bound_fraction.
    pub fn to_json(&self) -> String {
        let bound = match self.bound_gops {
            Some(b) => format!(",\"bound_gops\":{b:.2},\"bound_fraction\":{:.4}", self.gops / b),
            None => String::new(),
        };
        format!(
            "{{\"format\":\"{}\",\"path\":\"{}\",\"m\":{},\"n\":{},\"k\":{},\"threads\":{},\"gops\":{:.2},\"peak_fraction\":{:.4}{bound}}}",
            self.format.name().to_ascii_lowercase(),
            self.column.name(),
            self.m,
            self.n,
            self.k,
            self.threads,
            self.gops,
            self.gops / self.peak_gops.for_format(self.format)
        )
    }

    /// One aligned text line.
    pub fn to_text(&self) -> String {
        let bound = match self.bound_gops {
            Some(b) => format!("  bound {b:>6.1} GOPS, {:>5.1}% of it", 100.0 * self.gops / b),
            None => String::new(),
        };
        format!(
            "{:<7} {:<9} m={:<4} t={} {:>8.1} GOPS {:>5.1}% of {} peak{bound}",
            self.format.name(),
            self.column.name(),
            self.m,
            self.threads,
            self.gops,
            100.0 * self.gops / self.peak_gops.for_format(self.format),
            Peak::unit_name(self.format),
        )
    }
}
