//! Deterministic pseudo-random bytes and values (xorshift64 variants): the same seed gives
//! the same data on every run and machine.

/// `len` pseudo-random bytes (xorshift64*) from `seed`.
pub fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        let word = s.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
        let take = (len - out.len()).min(8);
        out.extend_from_slice(&word[..take]);
    }
    out
}

/// `len` deterministic values in [-1, 1) (xorshift64, 24 bits each), for tests and
/// examples that want activations or weights of their own seed.
pub fn pseudo_random_values(seed: u64, len: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_in_range() {
        assert_eq!(pseudo_random_bytes(3, 13), pseudo_random_bytes(3, 13));
        assert_eq!(pseudo_random_bytes(3, 13)[..5], pseudo_random_bytes(3, 5)[..]);
        assert_ne!(pseudo_random_bytes(3, 16), pseudo_random_bytes(4, 16));
        let v = pseudo_random_values(9, 1000);
        assert_eq!(v, pseudo_random_values(9, 1000));
        assert!(v.iter().all(|x| (-1.0..1.0).contains(x)));
    }
}
