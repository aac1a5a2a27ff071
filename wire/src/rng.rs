//! Seeded, tree-structured randomness. Each consumer derives a child stream from
//! the seed and a name, so adding draws in one subsystem never shifts another's
//! sequence (golden logs stay stable). No OS entropy is ever read.
//!
//! It lives here, next to the ids it draws, so that crates which must not link
//! the core (the host agent: reconnect jitter) share the very same streams;
//! `stratus_core::rng` re-exports it.

use uuid::Uuid;

/// SplitMix64-seeded xoshiro256** generator: small, fast and reproducible.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DetRng {
    s: [u64; 4],
}

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a, used only to mix stream names into seeds.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

impl DetRng {
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let s = [splitmix(&mut x), splitmix(&mut x), splitmix(&mut x), splitmix(&mut x)];
        DetRng { s }
    }

    /// A named child stream: same parent seed and name give the same stream.
    pub fn child(seed: u64, name: &str) -> Self {
        DetRng::new(seed ^ fnv1a(name.as_bytes()).rotate_left(17))
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (n > 0), by Lemire's multiply-shift (bias < 2^-32 for our sizes).
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        debug_assert!(n > 0);
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform float in [0, 1).
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A version-4-shaped UUID drawn from this stream.
    pub fn uuid(&mut self) -> Uuid {
        let a = self.next_u64().to_be_bytes();
        let b = self.next_u64().to_be_bytes();
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&a);
        bytes[8..].copy_from_slice(&b);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_children_are_independent() {
        let mut a = DetRng::new(7);
        let mut b = DetRng::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let mut x = DetRng::child(7, "allocator");
        let mut y = DetRng::child(7, "ids");
        assert_ne!(x.next_u64(), y.next_u64());
        assert_eq!(DetRng::child(7, "ids").uuid(), DetRng::child(7, "ids").uuid());
    }

    #[test]
    fn below_stays_in_range() {
        let mut r = DetRng::new(1);
        for n in 1..200 {
            assert!(r.below(n) < n);
        }
    }
}
