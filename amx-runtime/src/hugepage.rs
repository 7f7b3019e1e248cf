//! Zeroed byte buffers for weights, on transparent huge pages where Linux allows them.
//!
//! A decode-time matmul streams every weight byte from memory once per token. On 4 KiB
//! pages the stream crosses a page (a TLB miss, and a stop for the hardware prefetchers)
//! every 4 KiB; on 2 MiB pages it does not. Measured with `amx-bench bench --m 1 --dram`
//! (K = N = 4096, one thread, both the weights and the read loop they are compared with
//! on the same kind of memory): the VNNI kernels went from 83-91 % of the read-bandwidth
//! bound to 90-106 %.
//!
//! Large buffers ([`HUGE_PAGE`] bytes and more) are anonymous mappings aligned to 2 MiB
//! whose whole huge pages get `madvise(MADV_HUGEPAGE)`, which works in the kernel's
//! default `madvise` THP mode (the tail stays on small pages: no buffer holds up to 2 MiB
//! of memory it does not use); the pages are zero on first touch, so allocation costs no
//! pass over the memory. Small
//! buffers, other systems, and a refused advice fall back to ordinary memory:
//! [`HugeBuffer::huge_pages_advised`] says which one a buffer got.

use std::alloc::{self, Layout};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use crate::error::AllocError;

/// The huge page size on x86_64 Linux, and the alignment of large buffers.
pub const HUGE_PAGE: usize = 2 << 20;

/// The alignment of every buffer's start, whatever its size.
pub const MIN_ALIGN: usize = 64;

/// A zeroed, 64-byte aligned byte buffer; from [`HUGE_PAGE`] bytes on, 2 MiB aligned and
/// advised for transparent huge pages on Linux.
pub struct HugeBuffer {
    ptr: NonNull<u8>,
    len: usize,
    source: Source,
}

enum Source {
    /// No allocation (`len == 0`).
    None,
    /// The global allocator, with this layout.
    Heap(Layout),
    /// An anonymous mapping of this many bytes starting at `ptr`.
    #[cfg(target_os = "linux")]
    Mapped { len: usize, advised: bool },
}

// SAFETY: the buffer owns its bytes exclusively (no aliasing pointer is kept elsewhere);
// `&HugeBuffer` gives shared `&[u8]` access only.
unsafe impl Send for HugeBuffer {}
// SAFETY: `&HugeBuffer` exposes only `&[u8]` reads of bytes it owns; every write goes
// through `&mut self`, so sharing references across threads cannot race.
unsafe impl Sync for HugeBuffer {}

impl HugeBuffer {
    /// `len` zero bytes.
    ///
    /// # Panics
    ///
    /// When the memory cannot be had, with a message naming `len` (the size asked for):
    /// see [`HugeBuffer::try_zeroed`], for sizes that come from a caller.
    pub fn zeroed(len: usize) -> HugeBuffer {
        match HugeBuffer::try_zeroed(len) {
            Ok(buf) => buf,
            Err(e) => panic!("amx-runtime HugeBuffer: {e}"),
        }
    }

    /// `len` zero bytes, or an error naming `len` when the memory cannot be had.
    ///
    /// Errors: [`AllocError::TooLarge`] when no allocation can be `len` bytes (over
    /// `isize::MAX` once rounded up to [`MIN_ALIGN`]), checked before asking the system;
    /// [`AllocError::Refused`] when the system refuses the memory (a huge-page mapping
    /// that fails falls back to the global allocator first).
    pub fn try_zeroed(len: usize) -> Result<HugeBuffer, AllocError> {
        if len == 0 {
            // A dangling pointer with the promised alignment.
            let ptr = NonNull::new(std::ptr::without_provenance_mut(MIN_ALIGN))
                .unwrap_or(NonNull::dangling());
            return Ok(HugeBuffer { ptr, len, source: Source::None });
        }
        let layout = Layout::from_size_align(len, MIN_ALIGN)
            .map_err(|_| AllocError::TooLarge { bytes: len })?;
        #[cfg(target_os = "linux")]
        if len >= HUGE_PAGE
            && let Some(buf) = HugeBuffer::mapped(len)
        {
            return Ok(buf);
        }
        // SAFETY: `layout` has a non-zero size.
        let p = unsafe { alloc::alloc_zeroed(layout) };
        match NonNull::new(p) {
            Some(ptr) => Ok(HugeBuffer { ptr, len, source: Source::Heap(layout) }),
            None => Err(AllocError::Refused { bytes: len }),
        }
    }

    /// A 2 MiB-aligned anonymous mapping of `len` bytes whose whole huge pages are advised
    /// for THP (the tail past the last whole huge page stays on small pages, so a buffer
    /// never holds more than 4 KiB of memory it does not use); `None` when the system
    /// refuses the mapping.
    #[cfg(target_os = "linux")]
    fn mapped(len: usize) -> Option<HugeBuffer> {
        const PAGE: usize = 4096;
        let map_len = len.checked_next_multiple_of(PAGE)?;
        let span = map_len.checked_add(HUGE_PAGE)?;
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing
        // touches no existing memory.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                span,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return None;
        }
        let base = raw as usize;
        let start = base.next_multiple_of(HUGE_PAGE);
        let (head, tail) = (start - base, base + span - (start + map_len));
        // SAFETY: the head and tail are page-aligned parts of the mapping just made (base,
        // start and map_len are multiples of the page), used by nothing; unmapping them
        // leaves `start .. start + map_len` mapped.
        unsafe {
            if head > 0 {
                libc::munmap(raw, head);
            }
            if tail > 0 {
                libc::munmap((start + map_len) as *mut libc::c_void, tail);
            }
        }
        let whole = len / HUGE_PAGE * HUGE_PAGE;
        // SAFETY: advice on our own mapping (`whole <= map_len`); a refusal (THP disabled)
        // changes nothing.
        let advised =
            unsafe { libc::madvise(start as *mut libc::c_void, whole, libc::MADV_HUGEPAGE) } == 0;
        let ptr = NonNull::new(start as *mut u8)?;
        Some(HugeBuffer { ptr, len, source: Source::Mapped { len: map_len, advised } })
    }

    /// Whether the buffer's memory was advised for transparent huge pages and the kernel
    /// accepted the advice (it may still use small pages when none are free).
    pub fn huge_pages_advised(&self) -> bool {
        match self.source {
            #[cfg(target_os = "linux")]
            Source::Mapped { advised, .. } => advised,
            _ => false,
        }
    }
}

impl Deref for HugeBuffer {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr` points to `len` initialised (zeroed, then only written through
        // `&mut self`) bytes owned by this buffer, or is dangling with `len == 0`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for HugeBuffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; `&mut self` makes this the only access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for HugeBuffer {
    fn drop(&mut self) {
        match self.source {
            Source::None => {}
            // SAFETY: allocated by `alloc_zeroed` with exactly this layout.
            Source::Heap(layout) => unsafe { alloc::dealloc(self.ptr.as_ptr(), layout) },
            #[cfg(target_os = "linux")]
            // SAFETY: the mapping made in `mapped`, `len` bytes from `ptr`, unmapped once.
            Source::Mapped { len, .. } => unsafe {
                libc::munmap(self.ptr.as_ptr().cast(), len);
            },
        }
    }
}

impl Clone for HugeBuffer {
    fn clone(&self) -> Self {
        let mut out = HugeBuffer::zeroed(self.len);
        out.copy_from_slice(self);
        out
    }
}

impl fmt::Debug for HugeBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HugeBuffer")
            .field("len", &self.len)
            .field("huge_pages_advised", &self.huge_pages_advised())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_zeroed_aligned_writable_and_cloned() {
        for len in [0, 1, 63, 4096, HUGE_PAGE - 1, HUGE_PAGE, 3 * HUGE_PAGE + 5] {
            let mut b = HugeBuffer::zeroed(len);
            assert_eq!(b.len(), len);
            assert!((b.as_ptr() as usize).is_multiple_of(MIN_ALIGN), "len {len}");
            assert!(b.iter().all(|&x| x == 0), "len {len}");
            if len >= HUGE_PAGE {
                assert!((b.as_ptr() as usize).is_multiple_of(HUGE_PAGE), "len {len}");
            } else {
                assert!(!b.huge_pages_advised());
            }
            for (i, x) in b.iter_mut().enumerate() {
                *x = i as u8;
            }
            let c = b.clone();
            assert!(c.iter().enumerate().all(|(i, &x)| x == i as u8), "len {len}");
        }
    }

    /// `zeroed(usize::MAX)` used to abort saying "allocation of 1 bytes failed": the
    /// fallible constructor reports the size asked for, and `zeroed` panics with it.
    #[test]
    fn impossible_sizes_are_errors_naming_the_size() {
        let too_large = [usize::MAX, isize::MAX as usize, isize::MAX as usize - 10];
        for len in too_large {
            let e = HugeBuffer::try_zeroed(len).unwrap_err();
            assert_eq!(e, AllocError::TooLarge { bytes: len });
            assert!(e.to_string().contains(&format!("cannot allocate {len} bytes")), "{e}");
        }
        // Larger than any x86_64 address space (47 or 56 bits): refused by the system.
        let len = 1 << 62;
        assert_eq!(HugeBuffer::try_zeroed(len).unwrap_err(), AllocError::Refused { bytes: len });
        for len in [usize::MAX, 1 << 62] {
            let caught = std::panic::catch_unwind(|| HugeBuffer::zeroed(len));
            let payload = caught.expect_err("zeroed panics");
            let message = payload.downcast_ref::<String>().cloned().unwrap_or_default();
            assert!(message.contains(&format!("cannot allocate {len} bytes")), "{message}");
        }
        assert_eq!(HugeBuffer::try_zeroed(100).map(|b| b.len()), Ok(100));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn large_buffers_say_whether_the_advice_was_taken() {
        let b = HugeBuffer::zeroed(HUGE_PAGE);
        let mode = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled");
        match mode {
            Ok(m) if m.contains("[madvise]") || m.contains("[always]") => {
                assert!(b.huge_pages_advised(), "THP mode {m:?}")
            }
            _ => println!("notice: THP off or unknown here; the advice result is not checked"),
        }
    }
}
