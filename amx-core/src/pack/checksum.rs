//! The checksum of a packed buffer's body (every byte after the header).
//!
//! # Definition
//!
//! The body is read as chunks `c_0, c_1, ..` of 64 bytes (panels are multiples of 64
//! bytes, so every panel is whole chunks), each as 16 little-endian `u32` lanes. Per lane
//! `l`, with wrapping `u32` arithmetic:
//!
//! - `s1[l] = sum over i of c_i[l]`
//! - `s2[l] = sum over i of (i + 1) * c_i[l]`
//!
//! A range of panels is summed with a Fletcher recurrence (`a += c; b += a` per chunk,
//! so `b = sum (n - j) c_j` over the range's `n` chunks), then placed at its chunk index
//! `first`: `s1 = a`, `s2 = (first + n + 1) a - b`. Because the weights are the chunks'
//! positions in the whole body, the sums of disjoint ranges simply add ([`BodySum::combine`],
//! in any order): packing in pieces, in parallel or as a stack of matrices gives the same
//! value as one pass.
//!
//! The 64-bit value stored in the header ([`BodySum::value`]): low 32 bits
//! `sum over l of (2l + 1) s1[l]`, high 32 bits the top half of a splitmix64 chain over
//! `s2` then `s1`.
//!
//! # What it detects
//!
//! - **Any change inside one aligned 4-byte word** of the body, so every single-bit flip
//!   and every rewritten F16 scale (a NaN written into a row's scale): it changes one lane
//!   `l` of `s1` by some `d != 0`, so the low half by `(2l + 1) d`, which is not 0 modulo
//!   2^32 since `2l + 1` is odd. Guaranteed.
//! - **Reordered chunks**: exchanging two differing chunks `i` and `i + d` leaves `s1` as it
//!   is but changes `s2[l]` by `d (c_i[l] - c_{i+d}[l])`, which is not 0 in some lane
//!   whenever `d` is odd, or whenever some lane differs by an odd amount (`d < 2^32`); a
//!   changed `s2` then changes the high half except with probability about 2^-32.
//! - Anything else (zeroed or duplicated pages, several scattered flips) changes the value
//!   except with probability about 2^-32 per half.
//!
//! It is an integrity check against accidents (storage, memory, a wrong copy), not
//! against someone who forges buffers: the function is public and cheap to recompute.
//!
//! The AVX-512 and the portable implementation compute the same lanes (the tests compare
//! them on random data).

#[cfg(target_arch = "x86_64")]
use core::arch::x86_64::{__m512i, _mm512_add_epi32, _mm512_loadu_si512, _mm512_storeu_si512};

/// Lanes per 64-byte chunk.
const LANES: usize = 16;

/// Bytes per chunk.
pub(crate) const CHUNK: usize = 64;

/// The position-weighted lane sums of a range of body chunks (see the module docs). Sums
/// of disjoint ranges add up to the sum of their union.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodySum {
    s1: [u32; LANES],
    s2: [u32; LANES],
}

impl BodySum {
    /// The sum of no chunks.
    pub const EMPTY: BodySum = BodySum { s1: [0; LANES], s2: [0; LANES] };

    /// The sum of this range and another, disjoint one (order does not matter).
    #[must_use]
    pub fn combine(self, other: BodySum) -> BodySum {
        BodySum {
            s1: core::array::from_fn(|l| self.s1[l].wrapping_add(other.s1[l])),
            s2: core::array::from_fn(|l| self.s2[l].wrapping_add(other.s2[l])),
        }
    }

    /// The 64-bit value that the header stores (bytes 56..64).
    pub fn value(&self) -> u64 {
        let lo = (0..LANES)
            .fold(0u32, |h, l| h.wrapping_add((2 * l as u32 + 1).wrapping_mul(self.s1[l])));
        let hi = self
            .s2
            .iter()
            .chain(&self.s1)
            .fold(0x9E37_79B9_7F4A_7C15_u64, |h, &x| splitmix(h ^ u64::from(x)));
        (hi & 0xFFFF_FFFF_0000_0000) | u64::from(lo)
    }
}

/// The splitmix64 finalizer: a bijection of `u64` that spreads every input bit.
const fn splitmix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A running Fletcher pair over consecutive chunks, turned into a [`BodySum`] at the
/// chunk index where the run started.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Run {
    a: [u32; LANES],
    b: [u32; LANES],
    chunks: u64,
}

impl Run {
    pub(crate) const fn new() -> Run {
        Run { a: [0; LANES], b: [0; LANES], chunks: 0 }
    }

    /// Adds `bytes` (whole chunks: a length that is not a multiple of 64 ignores the tail,
    /// which callers never pass) on the fastest path this CPU has.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        #[cfg(target_arch = "x86_64")]
        if crate::detect::Features::cached().avx512_usable() {
            // SAFETY: the CPU and the OS support AVX-512 F (checked just above).
            unsafe { self.update_avx512(bytes) };
            return;
        }
        self.update_portable(bytes);
    }

    /// [`Run::update`] without SIMD.
    pub(crate) fn update_portable(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks_exact(CHUNK) {
            for (l, word) in chunk.chunks_exact(4).enumerate() {
                let w = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
                self.a[l] = self.a[l].wrapping_add(w);
                self.b[l] = self.b[l].wrapping_add(self.a[l]);
            }
        }
        self.chunks = self.chunks.wrapping_add((bytes.len() / CHUNK) as u64);
    }

    /// [`Run::update`] on AVX-512: one load and two adds per chunk.
    ///
    /// # Safety
    ///
    /// The CPU and the OS must support AVX-512 F.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn update_avx512(&mut self, bytes: &[u8]) {
        let load = |lanes: &[u32; LANES]| -> __m512i {
            // SAFETY: `lanes` is 64 readable bytes; the load is unaligned.
            unsafe { _mm512_loadu_si512(lanes.as_ptr().cast()) }
        };
        let (mut a, mut b) = (load(&self.a), load(&self.b));
        for chunk in bytes.chunks_exact(CHUNK) {
            // SAFETY: `chunk` is 64 readable bytes; the load is unaligned.
            let c = unsafe { _mm512_loadu_si512(chunk.as_ptr().cast()) };
            a = _mm512_add_epi32(a, c);
            b = _mm512_add_epi32(b, a);
        }
        // SAFETY: `self.a` and `self.b` are 64 writable bytes each; the stores are
        // unaligned.
        unsafe {
            _mm512_storeu_si512(self.a.as_mut_ptr().cast(), a);
            _mm512_storeu_si512(self.b.as_mut_ptr().cast(), b);
        }
        self.chunks = self.chunks.wrapping_add((bytes.len() / CHUNK) as u64);
    }

    /// The run's pair in registers, for a transposer that adds the chunks it stores.
    ///
    /// # Safety
    ///
    /// The CPU and the OS must support AVX-512 F.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    pub(crate) unsafe fn avx512_acc(&self) -> Acc512 {
        // SAFETY: AVX-512 F is the caller's contract; `a` and `b` are 64 readable bytes
        // each and the loads are unaligned.
        unsafe {
            Acc512 {
                a: _mm512_loadu_si512(self.a.as_ptr().cast()),
                b: _mm512_loadu_si512(self.b.as_ptr().cast()),
            }
        }
    }

    /// Takes back the pair from [`Run::avx512_acc`] after `chunks` more chunks were added.
    ///
    /// # Safety
    ///
    /// The CPU and the OS must support AVX-512 F.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    pub(crate) unsafe fn set_avx512_acc(&mut self, acc: Acc512, chunks: usize) {
        // SAFETY: AVX-512 F is the caller's contract; `a` and `b` are 64 writable bytes
        // each and the stores are unaligned.
        unsafe {
            _mm512_storeu_si512(self.a.as_mut_ptr().cast(), acc.a);
            _mm512_storeu_si512(self.b.as_mut_ptr().cast(), acc.b);
        }
        self.chunks = self.chunks.wrapping_add(chunks as u64);
    }

    /// The run as the sum of chunks `first .. first + n` of the body.
    pub(crate) fn at(&self, first: u64) -> BodySum {
        // (first + j + 1) = (first + n + 1) - (n - j); weights are taken modulo 2^32.
        let w = first.wrapping_add(self.chunks).wrapping_add(1) as u32;
        BodySum {
            s1: self.a,
            s2: core::array::from_fn(|l| w.wrapping_mul(self.a[l]).wrapping_sub(self.b[l])),
        }
    }
}

/// A [`Run`]'s Fletcher pair in two zmm registers.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(crate) struct Acc512 {
    a: __m512i,
    b: __m512i,
}

#[cfg(target_arch = "x86_64")]
impl Acc512 {
    /// Adds the next chunk (16 lanes): `a += c; b += a`.
    ///
    /// # Safety
    ///
    /// The CPU and the OS must support AVX-512 F.
    #[inline(always)]
    pub(crate) unsafe fn add(&mut self, c: __m512i) {
        // SAFETY: AVX-512 F is the caller's contract.
        unsafe {
            self.a = _mm512_add_epi32(self.a, c);
            self.b = _mm512_add_epi32(self.b, self.a);
        }
    }
}

/// The sum of `bytes` as chunks `first..` of a body.
pub(crate) fn sum(bytes: &[u8], first: u64) -> BodySum {
    let mut run = Run::new();
    run.update(bytes);
    run.at(first)
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::test_util::bytes;

    /// The definition, lane by lane, without the Fletcher recurrence.
    fn by_definition(body: &[u8]) -> BodySum {
        let mut s = BodySum::EMPTY;
        for (i, chunk) in body.chunks_exact(CHUNK).enumerate() {
            for (l, word) in chunk.chunks_exact(4).enumerate() {
                let w = u32::from_le_bytes(word.try_into().unwrap());
                s.s1[l] = s.s1[l].wrapping_add(w);
                s.s2[l] = s.s2[l].wrapping_add((i as u32 + 1).wrapping_mul(w));
            }
        }
        s
    }

    #[test]
    fn portable_avx512_and_definition_agree_on_random_data() {
        for (seed, chunks) in [(1, 0), (2, 1), (3, 7), (4, 64), (5, 1000)] {
            if cfg!(miri) && chunks > 64 {
                continue; // half a minute there; Miri has no AVX-512 path to compare anyway
            }
            let body = bytes(seed, chunks * CHUNK);
            let mut portable = Run::new();
            portable.update_portable(&body);
            assert_eq!(portable.at(0), by_definition(&body), "{chunks} chunks");
            #[cfg(target_arch = "x86_64")]
            if crate::detect::Features::cached().avx512_usable() {
                let mut fast = Run::new();
                // SAFETY: AVX-512 F is available (checked just above).
                unsafe { fast.update_avx512(&body) };
                assert_eq!(fast.at(0), portable.at(0), "{chunks} chunks: AVX-512 differs");
            } else {
                let why = "no AVX-512, the AVX-512 checksum is not compared";
                crate::test_util::skip(crate::test_util::Need::Avx512, why);
            }
        }
    }

    #[test]
    fn pieces_add_up_to_the_whole_in_any_order() {
        let body = bytes(9, 50 * CHUNK);
        let whole = sum(&body, 0);
        let (x, y) = (13 * CHUNK, 31 * CHUNK);
        let parts = [sum(&body[y..], 31), sum(&body[..x], 0), sum(&body[x..y], 13)];
        assert_eq!(parts[0].combine(parts[1]).combine(parts[2]), whole);
        assert_eq!(parts[2].combine(parts[0]).combine(parts[1]).value(), whole.value());
    }

    #[test]
    fn every_single_bit_flip_and_word_change_is_detected() {
        let body = bytes(21, 6 * CHUNK);
        let good = sum(&body, 0).value();
        // Under Miri every 37th bit (37 is odd, so every bit position of a byte is hit).
        let step = if cfg!(miri) { 37 } else { 1 };
        for bit in (0..body.len() * 8).step_by(step) {
            let mut bad = body.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_ne!(sum(&bad, 0).value(), good, "flip of bit {bit} not detected");
        }
        let mut bad = body.clone();
        bad[130..134].copy_from_slice(&[0xFF; 4]);
        assert_ne!(sum(&bad, 0).value(), good);
    }

    #[test]
    fn reordered_chunks_are_detected() {
        let body = bytes(22, 8 * CHUNK);
        let good = sum(&body, 0).value();
        for (i, j) in [(0, 1), (2, 5), (1, 7), (3, 4), (0, 4)] {
            let mut bad = body.clone();
            let (lo, hi) = bad.split_at_mut(j * CHUNK);
            lo[i * CHUNK..(i + 1) * CHUNK].swap_with_slice(&mut hi[..CHUNK]);
            assert_ne!(sum(&bad, 0).value(), good, "swap of chunks {i} and {j}");
        }
        // Chunks that differ only by where their lanes are (a transposed panel).
        let mut a = [0u8; CHUNK];
        a[4] = 3;
        let mut b = [0u8; CHUNK];
        b[0] = 9;
        let both = [a, b].concat();
        let swapped = [b, a].concat();
        assert_ne!(sum(&both, 0).value(), sum(&swapped, 0).value());
    }
}
