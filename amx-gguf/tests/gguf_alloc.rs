//! What the GGUF reader reserves for a declared count: never more than the file's own
//! size, however large the count (checked with a counting allocator, which is why this
//! is its own test binary).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use amx_gguf::GgufFile;

/// The system allocator, recording the largest single request.
struct Largest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`, which upholds `GlobalAlloc`'s
// contract; the only addition is an atomic maximum, which allocates nothing.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc`/`realloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: the caller's contract for `realloc` is passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

/// The tests of this binary share the counter: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// The largest single allocation while parsing `bytes` (which fails), and the error.
fn largest_while_parsing(bytes: Vec<u8>) -> (usize, String) {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    LARGEST.store(0, Ordering::Relaxed);
    let err = GgufFile::parse(bytes).expect_err("the file is cut short");
    (LARGEST.load(Ordering::Relaxed), err.to_string())
}

const LEN: usize = 4 << 20;

fn header(n_tensors: u64, n_kv: u64) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&n_tensors.to_le_bytes());
    b.extend_from_slice(&n_kv.to_le_bytes());
    b
}

/// A 4 MiB file declaring as many key-value pairs as could fit (13 bytes each), whose
/// second pair has an unknown value type: the reader used to reserve room for all of
/// them up front (56 bytes each in memory plus the key index, 4 times the file).
#[test]
fn a_large_key_count_reserves_no_more_than_the_file() {
    let mut b = header(0, ((LEN - 24) / 13) as u64);
    // One u8 pair, then one of value type 13 (unknown), which stops the parse.
    b.extend_from_slice(&1u64.to_le_bytes());
    b.push(b'k');
    b.extend_from_slice(&0u32.to_le_bytes());
    b.push(7);
    b.extend_from_slice(&1u64.to_le_bytes());
    b.push(b'j');
    b.extend_from_slice(&13u32.to_le_bytes());
    b.resize(LEN, 0);
    let (largest, err) = largest_while_parsing(b);
    assert!(err.contains("unknown GGUF value type 13"), "{err}");
    assert!(largest <= LEN, "largest allocation {largest} bytes for a {LEN}-byte file");
}

/// The same with tensor infos (24 bytes each at least, 72 in memory), the first one's
/// name of absurd length.
#[test]
fn a_large_tensor_count_reserves_no_more_than_the_file() {
    let mut b = header(((LEN - 24) / 24) as u64, 0);
    b.extend_from_slice(&u64::MAX.to_le_bytes());
    b.resize(LEN, 0);
    let (largest, err) = largest_while_parsing(b);
    assert!(err.contains("tensor name"), "{err}");
    assert!(largest <= LEN, "largest allocation {largest} bytes for a {LEN}-byte file");
}

/// Arrays of strings (8 bytes each at least, 24 in memory) and of arrays (12 at least,
/// 32 in memory).
#[test]
fn large_array_counts_reserve_no_more_than_the_file() {
    for (elem_type, min_size) in [(8u32, 8usize), (9, 12)] {
        let mut b = header(0, 1);
        b.extend_from_slice(&1u64.to_le_bytes());
        b.push(b'a');
        b.extend_from_slice(&9u32.to_le_bytes());
        b.extend_from_slice(&elem_type.to_le_bytes());
        let count = (LEN - b.len() - 8) / min_size;
        b.extend_from_slice(&(count as u64).to_le_bytes());
        // The first element is cut short: a string of absurd length, or an array of
        // unknown element type.
        b.extend_from_slice(&u64::MAX.to_le_bytes());
        b.resize(LEN, 0);
        let (largest, err) = largest_while_parsing(b);
        assert!(err.contains("offset"), "{err}");
        assert!(largest <= LEN, "type {elem_type}: largest allocation {largest} bytes");
    }
}
