//! One measured line of the `bench` subcommand, as text or JSON, with the peak it is
//! compared against.

use amx_core::formats::Format;

use super::Column;
use crate::peak::{Unit, peak_ops_on};

/// The tile unit's peaks measured in the same run on the same number of threads, GOPS.
#[derive(Clone, Copy, Debug)]
pub struct Peak {
    /// `tdpbssd` loop, in GOPS; `None` without AMX.
    pub int8: Option<f64>,
    /// `tdpbf16ps` loop, in GOPS; `None` without AMX.
    pub bf16: Option<f64>,
}

impl Peak {
    /// Both peaks on `threads` threads at once (`None` without AMX).
    pub fn measure(threads: usize) -> Peak {
        let ops = |unit| peak_ops_on(unit, 200_000, threads).map(|o| o / 1e9);
        Peak { int8: ops(Unit::Int8), bf16: ops(Unit::Bf16) }
    }

    /// The peak a format is held to: the int8 one for the block formats (their natural
    /// instruction is `tdpbssd`), the BF16 one for F16 and BF16 (the formats of one value
    /// per block).
    pub fn for_format(&self, format: Format) -> Option<f64> {
        if format.block_values() == 1 { self.bf16 } else { self.int8 }
    }

    /// Which peak [`Peak::for_format`] picks, as a word.
    pub fn unit_name(format: Format) -> &'static str {
        if format.block_values() == 1 { "bf16" } else { "int8" }
    }

    /// The two peaks as text: "int8 N GOPS, bf16 N GOPS", or that there is no AMX.
    pub fn describe(&self) -> String {
        match (self.int8, self.bf16) {
            (Some(i), Some(b)) => format!("int8 {i:.0} GOPS, bf16 {b:.0} GOPS"),
            _ => "none (no AMX on this CPU)".to_string(),
        }
    }
}

/// `gops` as a share of `peak`, as JSON (`null` without a peak).
pub fn fraction_json(gops: f64, peak: Option<f64>) -> String {
    peak.map_or_else(|| "null".to_string(), |p| format!("{:.4}", gops / p))
}

/// `gops` as a percentage of `peak`, `width + 1` characters wide ("-" without a peak).
pub fn percent_text(gops: f64, peak: Option<f64>, width: usize) -> String {
    match peak {
        Some(p) => format!("{:>width$.1}%", 100.0 * gops / p),
        None => format!("{:>w$}", "-", w = width + 1),
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
            "{{\"format\":\"{}\",\"path\":\"{}\",\"m\":{},\"n\":{},\"k\":{},\"threads\":{},\"gops\":{:.2},\"peak_fraction\":{}{bound}}}",
            self.format.name().to_ascii_lowercase(),
            self.column.name(),
            self.m,
            self.n,
            self.k,
            self.threads,
            self.gops,
            fraction_json(self.gops, self.peak_gops.for_format(self.format))
        )
    }

    /// One aligned text line.
    pub fn to_text(&self) -> String {
        let bound = match self.bound_gops {
            Some(b) => format!("  bound {b:>6.1} GOPS, {:>5.1}% of it", 100.0 * self.gops / b),
            None => String::new(),
        };
        format!(
            "{:<7} {:<9} m={:<4} t={} {:>8.1} GOPS  {}{bound}",
            self.format.name(),
            self.column.name(),
            self.m,
            self.threads,
            self.gops,
            match self.peak_gops.for_format(self.format) {
                Some(p) => format!(
                    "{:>5.1}% of {} peak",
                    100.0 * self.gops / p,
                    Peak::unit_name(self.format)
                ),
                None => "(no tile peak)".to_string(),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(peak: Option<f64>, bound: Option<f64>) -> Row {
        Row {
            format: Format::Q4_0,
            column: Column::Dispatch,
            m: 1,
            n: 4096,
            k: 4096,
            threads: 1,
            gops: 50.0,
            peak_gops: Peak { int8: peak, bf16: peak },
            bound_gops: bound,
        }
    }

    #[test]
    fn without_amx_the_peak_share_is_null_in_json_and_said_in_text() {
        let json = row(None, Some(100.0)).to_json();
        assert!(json.contains("\"peak_fraction\":null"), "{json}");
        assert!(json.contains("\"bound_fraction\":0.5000"), "{json}");
        assert!(!json.contains("NaN"), "{json}");
        assert!(row(None, None).to_text().contains("(no tile peak)"));
        let with = row(Some(200.0), None);
        assert!(with.to_json().contains("\"peak_fraction\":0.2500"));
        assert!(with.to_text().contains(" 25.0% of int8 peak"), "{}", with.to_text());
    }
}
