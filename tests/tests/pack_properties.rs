//! Properties of the weight repack (`amx_core::pack`) over every format, random shapes
//! (N in 1..=40 with the panel edges 1, 15, 16, 17, 33 favoured; K a few blocks, any K for
//! F16/BF16; 1..=3 stacked matrices) and random block bytes:
//! - pack then unpack is the identity, and nothing past the packed size is written;
//! - packing split into disjoint panel ranges (in any order) plus `write_header` of the
//!   ranges' summed body checksums equals the one-shot pack, and `unpack_panels` of each
//!   range gives back its `source_range`;
//! - the packed bytes do not depend on what the destination held;
//! - every bad input gives its error variant with the right numbers, never a panic;
//! - a changed header byte fails the header checksum, a changed body byte `verify` and
//!   `unpack`.
//!
//! A case is a shape plus a seed; every byte and every choice inside a property comes from
//! that seed, so a failure's printed case reproduces it. Set `QUICKCHECK_TESTS` to run more
//! cases per property than the default.

use amx_core::formats::Format;
use amx_core::pack::{self, HEADER_BYTES, PackError, PackedLayout, PackedRef, packed_size};
use quickcheck::{Arbitrary, Gen, QuickCheck};

/// Cases per property in a default (debug) `cargo test` run: the file stays well under
/// 20 s on one core.
const DEFAULT_TESTS: u64 = 1000;

/// Row counts around the 16-row panel edges, picked half of the time.
const EDGE_N: [usize; 10] = [1, 2, 15, 16, 17, 31, 32, 33, 39, 40];

/// K values around the 32-value group edges for F16/BF16, picked half of the time.
const EDGE_FLOAT_K: [usize; 10] = [1, 2, 31, 32, 33, 63, 64, 65, 96, 97];

/// Bytes that make special values in every format (F16/BF16 infinities, NaNs, signed zeros,
/// subnormals, all-ones nibbles), used instead of uniform bytes in some cases.
const PALETTE: [u8; 10] = [0x00, 0x01, 0x3C, 0x7C, 0x7E, 0x7F, 0x80, 0xFC, 0xFE, 0xFF];

/// SplitMix64: the per-case source of bytes and choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n >= 1`; the modulo bias is irrelevant here).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn below(g: &mut Gen, n: usize) -> usize {
    usize::arbitrary(g) % n
}

/// One test case: a valid shape, a seed, and whether the source bytes come from
/// [`PALETTE`] rather than uniformly.
#[derive(Clone, Debug)]
struct Case {
    format: Format,
    n: usize,
    k: usize,
    matrices: usize,
    palette: bool,
    seed: u64,
}

impl Case {
    fn layout(&self) -> PackedLayout {
        PackedLayout::new(self.format, self.n, self.k, self.matrices)
            .unwrap_or_else(|e| panic!("generated an invalid shape {self:?}: {e}"))
    }

    fn rng(&self, salt: u64) -> Rng {
        Rng(self.seed ^ salt.wrapping_mul(0xD6E8_FEB8_6659_FD93))
    }

    /// The ggml source bytes of this case.
    fn source(&self) -> Vec<u8> {
        let len = self.layout().source_bytes();
        let mut rng = self.rng(0);
        if self.palette {
            (0..len).map(|_| PALETTE[rng.below(PALETTE.len())]).collect()
        } else {
            rng.bytes(len)
        }
    }

    fn block(&self) -> usize {
        self.format.block_values()
    }

    /// One-shot pack into a zeroed buffer of exactly the packed size.
    fn packed(&self, src: &[u8]) -> Vec<u8> {
        let mut dst = vec![0u8; self.layout().total_bytes()];
        pack::pack(self.format, self.n, self.k, self.matrices, src, &mut dst)
            .unwrap_or_else(|e| panic!("pack of a valid case failed: {e}"));
        dst
    }
}

impl Arbitrary for Case {
    fn arbitrary(g: &mut Gen) -> Self {
        let format = *g.choose(&Format::ALL).expect("formats");
        let n = if bool::arbitrary(g) { EDGE_N[below(g, EDGE_N.len())] } else { 1 + below(g, 40) };
        let k = match format.block_values() {
            1 if bool::arbitrary(g) => EDGE_FLOAT_K[below(g, EDGE_FLOAT_K.len())],
            1 => 1 + below(g, 130),
            b if b <= 32 => b * (1 + below(g, 6)),
            b => b * (1 + below(g, 3)),
        };
        let matrices = 1 + below(g, 3);
        Case { format, n, k, matrices, palette: below(g, 4) == 0, seed: u64::arbitrary(g) }
    }

    /// Smaller shapes with the same seed and format.
    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let b = self.block();
        let mut out = Vec::new();
        for n in [1, self.n / 2, self.n - 1] {
            if n >= 1 && n < self.n {
                out.push(Case { n, ..self.clone() });
            }
        }
        for k in [b, self.k / b / 2 * b, self.k - b] {
            if k >= b && k < self.k {
                out.push(Case { k, ..self.clone() });
            }
        }
        if self.matrices > 1 {
            out.push(Case { matrices: 1, ..self.clone() });
            out.push(Case { matrices: self.matrices - 1, ..self.clone() });
        }
        Box::new(out.into_iter())
    }
}

type Outcome = Result<(), String>;

/// `Err` with a message naming `what` unless `got == want`.
fn expect<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Outcome {
    if got == want { Ok(()) } else { Err(format!("{what}: got {got:?}, want {want:?}")) }
}

fn ensure(what: &str, ok: bool) -> Outcome {
    if ok { Ok(()) } else { Err(what.to_owned()) }
}

fn check(property: fn(Case) -> Outcome) {
    let tests = std::env::var("QUICKCHECK_TESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_TESTS);
    QuickCheck::new().tests(tests).max_tests(tests).quickcheck(property);
}

fn round_trip(case: Case) -> Outcome {
    let layout = case.layout();
    let (f, n, k, e) = (case.format, case.n, case.k, case.matrices);
    expect("packed_size", packed_size(f, n, k, e), Ok(layout.total_bytes()))?;
    let src = case.source();
    let mut rng = case.rng(1);
    let tail = 1 + rng.below(100);
    let mut dst = rng.bytes(layout.total_bytes() + tail);
    let before_tail = dst[layout.total_bytes()..].to_vec();
    expect("pack", pack::pack(f, n, k, e, &src, &mut dst), Ok(layout))?;
    ensure("pack wrote past total_bytes", dst[layout.total_bytes()..] == before_tail[..])?;
    let view = PackedRef::parse_expecting(&dst, f, n, k, e).map_err(|e| format!("parse: {e}"))?;
    expect("parsed layout", *view.layout(), layout)?;
    expect("view length", view.bytes().len(), layout.total_bytes())?;
    let mut back = rng.bytes(src.len());
    expect("unpack", pack::unpack(&view, &mut back), Ok(()))?;
    ensure("unpack differs from the source", back == src)
}

#[test]
fn pack_then_unpack_is_the_identity() {
    check(round_trip);
}

/// Cut points of `0..panels` into ranges, some empty, in a random order.
fn random_ranges(rng: &mut Rng, panels: usize) -> Vec<std::ops::Range<usize>> {
    let mut cuts: Vec<usize> = (0..rng.below(panels + 2)).map(|_| rng.below(panels + 1)).collect();
    cuts.push(0);
    cuts.push(panels);
    cuts.sort_unstable();
    let mut ranges: Vec<_> = cuts.windows(2).map(|w| w[0]..w[1]).collect();
    for i in (1..ranges.len()).rev() {
        ranges.swap(i, rng.below(i + 1));
    }
    ranges
}

fn split_packing(case: Case) -> Outcome {
    let layout = case.layout();
    let src = case.source();
    let whole = case.packed(&src);
    let mut rng = case.rng(2);
    let mut dst = rng.bytes(layout.total_bytes());
    let pb = layout.panel_bytes();
    let ranges = random_ranges(&mut rng, layout.panels());
    // Each range's share of the body checksum, added in the ranges' (shuffled) order.
    let mut sum = pack::BodySum::EMPTY;
    for r in &ranges {
        // The slice starts at the range's first panel; it may run to the end of the buffer
        // (pack_panels leaves bytes past the range alone) or be exactly the range.
        let start = layout.panel_offset(r.start).map_err(|e| e.to_string())?;
        let end = if rng.below(2) == 0 { dst.len() } else { start + r.len() * pb };
        let part = pack::pack_panels(&layout, &src, r.clone(), &mut dst[start..end])
            .map_err(|e| format!("pack_panels({r:?}) of {ranges:?}: {e}"))?;
        sum = sum.combine(part);
    }
    expect("write_header", pack::write_header(&layout, &sum, &mut dst), Ok(()))?;
    ensure(&format!("split packing over {ranges:?} differs from pack"), dst == whole)?;

    let view = PackedRef::parse(&whole).map_err(|e| format!("parse: {e}"))?;
    for r in ranges {
        let sr = pack::source_range(&layout, r.clone());
        let mut part = rng.bytes(sr.len());
        expect("unpack_panels", pack::unpack_panels(&view, r.clone(), &mut part), Ok(()))?;
        ensure(&format!("unpack_panels({r:?}) differs from src[{sr:?}]"), part == src[sr])?;
    }
    Ok(())
}

#[test]
fn split_packing_equals_one_shot_packing() {
    check(split_packing);
}

fn deterministic(case: Case) -> Outcome {
    let layout = case.layout();
    let (f, n, k, e) = (case.format, case.n, case.k, case.matrices);
    let src = case.source();
    let zeros = case.packed(&src);
    let mut rng = case.rng(3);
    let fills = [vec![0xFF; layout.total_bytes()], rng.bytes(layout.total_bytes()), zeros.clone()];
    for (i, mut dst) in fills.into_iter().enumerate() {
        expect("pack", pack::pack(f, n, k, e, &src, &mut dst), Ok(layout))?;
        ensure(&format!("pack into destination #{i} differs from pack into zeros"), dst == zeros)?;
    }
    Ok(())
}

#[test]
fn pack_ignores_what_the_destination_held() {
    check(deterministic);
}

fn shape_and_length_errors(case: Case) -> Outcome {
    let layout = case.layout();
    let (f, n, k, e) = (case.format, case.n, case.k, case.matrices);
    let src = case.source();
    let total = layout.total_bytes();
    let mut big = vec![0u8; total];

    for (n, k, e) in [(0, k, e), (n, 0, e), (n, k, 0), (0, 0, 0)] {
        let want = Err(PackError::EmptyShape { n, k, matrices: e });
        expect("pack of an empty shape", pack::pack(f, n, k, e, &src, &mut big), want)?;
        expect("packed_size of an empty shape", packed_size(f, n, k, e), want.map(|_| 0))?;
    }

    let block = case.block();
    let mut rng = case.rng(4);
    if block > 1 {
        let bad = k + 1 + rng.below(block - 1);
        let want = Err(PackError::NotBlockMultiple { format: f, k: bad, block });
        expect("pack of a partial block", pack::pack(f, n, bad, e, &src, &mut big), want)?;
        expect("packed_size of a partial block", packed_size(f, n, bad, e), want.map(|_| 0))?;
    } else {
        ensure("F16/BF16 take any K", packed_size(f, n, k + 1, e).is_ok())?;
    }

    for len in [src.len() - 1, src.len() + 1] {
        let mut wrong = src.clone();
        wrong.resize(len, 0);
        let want = PackError::SourceLength { expected: src.len(), actual: len };
        expect("pack of a wrong source", pack::pack(f, n, k, e, &wrong, &mut big), Err(want))?;
        let r = pack::pack_panels(&layout, &wrong, 0..layout.panels(), &mut big[HEADER_BYTES..]);
        expect("pack_panels of a wrong source", r, Err(want))?;
    }

    let mut small = vec![0u8; total - 1];
    let want = Err(PackError::DestinationTooSmall { needed: total, actual: total - 1 });
    expect("pack into a short destination", pack::pack(f, n, k, e, &src, &mut small), want)?;
    let start = rng.below(layout.panels());
    let end = start + 1 + rng.below(layout.panels() - start);
    let needed = (end - start) * layout.panel_bytes();
    let mut short = vec![0u8; needed - 1];
    let want = Err(PackError::DestinationTooSmall { needed, actual: needed - 1 });
    expect("pack_panels short", pack::pack_panels(&layout, &src, start..end, &mut short), want)?;
    let want = Err(PackError::DestinationTooSmall { needed: HEADER_BYTES, actual: 63 });
    expect(
        "write_header short",
        pack::write_header(&layout, &pack::BodySum::EMPTY, &mut [0; 63]),
        want,
    )?;

    let p = layout.panels();
    for (a, b) in [(0, p + 1), (p, p + 1), (1, 0), (p + 5, p + 9)] {
        let want = Err(PackError::PanelRange { start: a, end: b, panels: p });
        #[allow(clippy::reversed_empty_ranges)] // A reversed range is one of the errors.
        let r = pack::pack_panels(&layout, &src, a..b, &mut big);
        expect("pack_panels out of range", r, want)?;
        expect("source_range out of range", pack::source_range(&layout, a..b), 0..0)?;
    }

    let packed = case.packed(&src);
    let view = PackedRef::parse(&packed).map_err(|e| format!("parse: {e}"))?;
    for len in [src.len() - 1, src.len() + 1] {
        let want = Err(PackError::SourceLength { expected: src.len(), actual: len });
        expect("unpack into a wrong length", pack::unpack(&view, &mut vec![0; len]), want)?;
    }
    let want = Err(PackError::PanelRange { start: 0, end: p + 1, panels: p });
    expect("unpack_panels out of range", pack::unpack_panels(&view, 0..p + 1, &mut []), want)?;
    Ok(())
}

#[test]
fn shape_and_length_errors_name_their_numbers() {
    check(shape_and_length_errors);
}

fn truncated(case: Case) -> Outcome {
    let packed = case.packed(&case.source());
    let total = packed.len();
    let mut rng = case.rng(5);
    for len in [0, 1, HEADER_BYTES - 1, HEADER_BYTES, total - 1, rng.below(total)] {
        let needed = if len < HEADER_BYTES { HEADER_BYTES } else { total };
        let got = PackedRef::parse(&packed[..len]).map(|p| *p.layout());
        expect(
            &format!("parse of {len} of {total} bytes"),
            got,
            Err(PackError::Truncated { needed, actual: len }),
        )?;
    }
    Ok(())
}

#[test]
fn truncated_buffers_are_refused() {
    check(truncated);
}

/// The error that corrupting header byte `at` must give, from the header layout in the
/// module docs: the magic is checked first, then the header checksum (bytes 48..56, FNV-1a
/// 64 of bytes 0..48 and 56..64) before any other field is read.
fn corrupted_header_outcome(
    header: &[u8],
    at: usize,
    value: u8,
) -> Result<PackedLayout, PackError> {
    let mut h = header[..HEADER_BYTES].to_vec();
    h[at] = value;
    let computed = h[..48]
        .iter()
        .chain(&h[56..64])
        .fold(0xcbf2_9ce4_8422_2325_u64, |s, &b| (s ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let stored = u64::from_le_bytes(h[48..56].try_into().expect("8 bytes"));
    match at {
        0..8 => Err(PackError::BadMagic),
        _ => Err(PackError::HeaderChecksum { stored, computed }),
    }
}

fn corrupted_header(case: Case) -> Outcome {
    let (f, n, k, e) = (case.format, case.n, case.k, case.matrices);
    let packed = case.packed(&case.source());
    let mut rng = case.rng(6);
    // Magic, version, rows per panel, format, dimensions, total size, header checksum, body
    // checksum: each corruption of one byte gives the documented error.
    let fields = [0..8, 8..10, 10..12, 12..16, 16..24, 24..32, 32..40, 40..48, 48..56, 56..64];
    for field in fields {
        for _ in 0..2 {
            let at = field.start + rng.below(field.len());
            let value = packed[at] ^ (1 + rng.below(255)) as u8;
            let mut bad = packed.clone();
            bad[at] = value;
            let want = corrupted_header_outcome(&packed, at, value);
            let got = PackedRef::parse(&bad).map(|p| *p.layout());
            expect(&format!("parse with byte {at} set to {value:#04x}"), got, want)?;
        }
    }
    // The format byte relabelled as another known format (all ids are below 256).
    let other = Format::ALL[rng.below(Format::ALL.len())];
    if other != f {
        let value = u8::try_from(other.ggml_type()).expect("ggml ids fit a byte");
        let mut bad = packed.clone();
        bad[12] = value;
        let want = corrupted_header_outcome(&packed, 12, value);
        let got = PackedRef::parse(&bad).map(|p| *p.layout());
        expect(&format!("parse relabelled as {other}"), got, want)?;
    }
    // Any single corrupted header byte, dimensions included: the caller that names what it
    // expects always gets an error.
    for at in 0..HEADER_BYTES {
        let mut bad = packed.clone();
        bad[at] ^= (1 + rng.below(255)) as u8;
        let got = PackedRef::parse_expecting(&bad, f, n, k, e);
        ensure(&format!("parse_expecting accepted corrupted byte {at}"), got.is_err())?;
    }
    Ok(())
}

#[test]
fn corrupted_headers_are_refused() {
    check(corrupted_header);
}

/// A random body byte changed (one bit, or a whole new value, or a NaN-ish palette byte):
/// the header still parses (the per-call check reads the header only), `verify` and
/// `unpack` refuse it with the header's stored checksum.
fn corrupted_body(case: Case) -> Outcome {
    let packed = case.packed(&case.source());
    let stored = u64::from_le_bytes(packed[56..64].try_into().expect("8 bytes"));
    let mut rng = case.rng(7);
    for _ in 0..4 {
        let at = HEADER_BYTES + rng.below(packed.len() - HEADER_BYTES);
        let mut bad = packed.clone();
        bad[at] = match rng.below(3) {
            0 => bad[at] ^ (1 << rng.below(8)),
            1 => bad[at] ^ (1 + rng.below(255)) as u8,
            _ => bad[at] ^ PALETTE[1 + rng.below(PALETTE.len() - 1)],
        };
        let view = PackedRef::parse(&bad).map_err(|e| format!("parse after body edit: {e}"))?;
        let err = pack::verify(&bad).map(|_| ()).expect_err("verify accepted a changed body");
        let what = format!("verify with body byte {at} changed");
        ensure(
            &format!("{what}: {err:?}"),
            matches!(err, PackError::BodyChecksum { stored: s, .. } if s == stored),
        )?;
        let mut out = vec![0u8; case.layout().source_bytes()];
        expect(
            &format!("unpack with body byte {at} changed"),
            pack::unpack(&view, &mut out),
            Err(err),
        )?;
    }
    Ok(())
}

#[test]
fn corrupted_bodies_are_refused_by_verify_and_unpack() {
    check(corrupted_body);
}
