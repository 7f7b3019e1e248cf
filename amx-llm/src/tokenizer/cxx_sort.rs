//! libstdc++'s `std::sort` (GCC's introsort), step for step, so that elements the
//! comparison ties end up in the order llama.cpp's build leaves them.
//!
//! llama.cpp sorts its special-token list by length alone; among tokens of one length the
//! order is whatever `std::sort` makes of the id order, and it decides which of two
//! overlapping tokens of that length is split out of the text first.

/// Below this many elements a range is left to the final insertion sort.
const THRESHOLD: usize = 16;

/// Sorts `v` as `std::sort(v.begin(), v.end(), less)` does with libstdc++.
pub(super) fn sort<T: Copy>(v: &mut [T], less: impl Fn(&T, &T) -> bool) {
    if v.len() > 1 {
        // 2 * floor(log2(n)), libstdc++'s depth limit.
        let depth = 2 * (usize::BITS - 1 - v.len().leading_zeros()) as usize;
        introsort_loop(v, depth, &less);
        final_insertion_sort(v, &less);
    }
}

fn introsort_loop<T: Copy>(v: &mut [T], mut depth: usize, less: &impl Fn(&T, &T) -> bool) {
    let mut last = v.len();
    while last > THRESHOLD {
        if depth == 0 {
            heap_sort(&mut v[..last], less);
            return;
        }
        depth -= 1;
        let cut = partition_pivot(&mut v[..last], less);
        introsort_loop(&mut v[cut..last], depth, less);
        last = cut;
    }
}

/// `__unguarded_partition_pivot`: the median of `v[1]`, `v[mid]`, `v[n - 1]` moved to
/// `v[0]`, then Hoare's partition of `v[1..]` around it.
fn partition_pivot<T: Copy>(v: &mut [T], less: &impl Fn(&T, &T) -> bool) -> usize {
    let n = v.len();
    let (a, b, c) = (1, n / 2, n - 1);
    let median = if less(&v[a], &v[b]) {
        if less(&v[b], &v[c]) {
            b
        } else if less(&v[a], &v[c]) {
            c
        } else {
            a
        }
    } else if less(&v[a], &v[c]) {
        a
    } else if less(&v[b], &v[c]) {
        c
    } else {
        b
    };
    v.swap(0, median);
    let (mut first, mut last) = (1, n);
    loop {
        while less(&v[first], &v[0]) {
            first += 1;
        }
        last -= 1;
        while less(&v[0], &v[last]) {
            last -= 1;
        }
        if first >= last {
            return first;
        }
        v.swap(first, last);
        first += 1;
    }
}

fn final_insertion_sort<T: Copy>(v: &mut [T], less: &impl Fn(&T, &T) -> bool) {
    if v.len() > THRESHOLD {
        insertion_sort(&mut v[..THRESHOLD], less);
        for i in THRESHOLD..v.len() {
            linear_insert(v, i, less);
        }
    } else {
        insertion_sort(v, less);
    }
}

fn insertion_sort<T: Copy>(v: &mut [T], less: &impl Fn(&T, &T) -> bool) {
    for i in 1..v.len() {
        if less(&v[i], &v[0]) {
            let x = v[i];
            v.copy_within(0..i, 1);
            v[0] = x;
        } else {
            linear_insert(v, i, less);
        }
    }
}

/// `__unguarded_linear_insert`: moves `v[i]` left past every element it is less than
/// (something not greater sits before it, so the walk stops inside `v`).
fn linear_insert<T: Copy>(v: &mut [T], mut i: usize, less: &impl Fn(&T, &T) -> bool) {
    let x = v[i];
    while i > 0 && less(&x, &v[i - 1]) {
        v[i] = v[i - 1];
        i -= 1;
    }
    v[i] = x;
}

/// `__partial_sort(first, last, last)`: `__make_heap`, then `__sort_heap`.
fn heap_sort<T: Copy>(v: &mut [T], less: &impl Fn(&T, &T) -> bool) {
    let len = v.len();
    if len >= 2 {
        let mut parent = (len - 2) / 2;
        loop {
            let x = v[parent];
            adjust_heap(v, parent, len, x, less);
            if parent == 0 {
                break;
            }
            parent -= 1;
        }
    }
    let mut last = len;
    while last > 1 {
        last -= 1;
        let x = v[last];
        v[last] = v[0];
        adjust_heap(v, 0, last, x, less);
    }
}

fn adjust_heap<T: Copy>(
    v: &mut [T],
    mut hole: usize,
    len: usize,
    x: T,
    less: &impl Fn(&T, &T) -> bool,
) {
    let top = hole;
    let mut child = hole;
    while child < (len - 1) / 2 {
        child = 2 * (child + 1);
        if less(&v[child], &v[child - 1]) {
            child -= 1;
        }
        v[hole] = v[child];
        hole = child;
    }
    if len & 1 == 0 && child == (len - 2) / 2 {
        child = 2 * (child + 1);
        v[hole] = v[child - 1];
        hole = child - 1;
    }
    // __push_heap
    while hole > top {
        let parent = (hole - 1) / 2;
        if !less(&v[parent], &x) {
            break;
        }
        v[hole] = v[parent];
        hole = parent;
    }
    v[hole] = x;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(key, id)` pairs sorted by key alone, descending, as llama.cpp sorts its specials.
    fn by_key_desc(keys: &[u32]) -> Vec<usize> {
        let mut v: Vec<usize> = (0..keys.len()).collect();
        sort(&mut v, |&a, &b| keys[a] > keys[b]);
        v
    }

    #[test]
    fn sorts() {
        let keys: Vec<u32> = (0..200u32).map(|i| (i * 7919) % 101).collect();
        let v = by_key_desc(&keys);
        assert!(v.windows(2).all(|w| keys[w[0]] >= keys[w[1]]));
        let mut seen = v.clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..200).collect::<Vec<_>>());
    }

    /// The permutations g++ 12's libstdc++ `std::sort` gives (a C++ program sorting indices
    /// by `keys[a] > keys[b]` printed them): ties come out of order past 16 elements.
    #[test]
    fn ties_as_libstdcxx_leaves_them() {
        let keys: Vec<u32> = (0..40u32).map(|i| [2, 3, 2, 1][(i % 4) as usize]).collect();
        assert_eq!(by_key_desc(&keys), LIBSTDCXX_40);
        // Past 2 * log2(n) levels of bad pivots libstdc++ heap-sorts: all keys equal
        // but one never recurses that deep, so check the heap path directly.
        let mut v: Vec<usize> = (0..21).collect();
        let keys: Vec<u32> = (0..21u32).map(|i| i % 3).collect();
        heap_sort(&mut v, &|&a: &usize, &b: &usize| keys[a] > keys[b]);
        assert_eq!(v, LIBSTDCXX_HEAP_21);
    }

    #[rustfmt::skip]
    const LIBSTDCXX_40: [usize; 40] = [1, 21, 17, 25, 13, 29, 9, 33, 5, 37, 32, 34, 30, 28, 36, 26, 24, 38, 22, 20, 0, 18, 2, 16, 14, 4, 12, 10, 6, 8, 39, 3, 35, 7, 31, 11, 27, 15, 23, 19];
    #[rustfmt::skip]
    const LIBSTDCXX_HEAP_21: [usize; 21] = [17, 8, 20, 11, 5, 14, 2, 7, 16, 19, 1, 10, 4, 13, 15, 3, 18, 9, 0, 12, 6];
}
