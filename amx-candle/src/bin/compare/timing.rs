//! Interleaved timing of two functions: one timed call of each per round, alternating
//! which goes first, median seconds per call.

use std::time::Duration;

/// Per-call medians of `a` and `b` and how many timed calls each made.
#[derive(Clone, Copy, Debug)]
pub struct Pair {
    pub a: f64,
    pub b: f64,
    pub calls: usize,
}

/// Most timed calls per side (tiny shapes stop here rather than at `min_time`).
const MAX_CALLS: usize = 10_000;

/// Times `a` and `b` in alternation (the caller warms both up first) until each has
/// run for `min_time` in at least 5 timed calls, or for `5 * min_time` in at least 3
/// (slow cells), and returns the median of each side's calls. Each function runs one
/// call and returns that call's own duration. With `settle`, each side's turn starts with
/// one untimed call, so that the other side's worker threads (which spin a while after
/// a call before they sleep) and cache state do not land in the timed call.
pub fn interleaved<E>(
    min_time: Duration,
    settle: bool,
    mut a: impl FnMut() -> Result<Duration, E>,
    mut b: impl FnMut() -> Result<Duration, E>,
) -> Result<Pair, E> {
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    let (mut sum_a, mut sum_b) = (Duration::ZERO, Duration::ZERO);
    loop {
        let calls = ta.len();
        let least = sum_a.min(sum_b);
        let done = (calls >= 5 && least >= min_time)
            || (calls >= 3 && least >= 5 * min_time)
            || calls >= MAX_CALLS;
        if done {
            break;
        }
        let first_a = calls % 2 == 0;
        for side in 0..2 {
            let run_a = (side == 0) == first_a;
            let mut call = || if run_a { a() } else { b() };
            if settle {
                call()?;
            }
            let d = call()?;
            if run_a {
                ta.push(d);
                sum_a += d;
            } else {
                tb.push(d);
                sum_b += d;
            }
        }
    }
    Ok(Pair { a: median(&mut ta), b: median(&mut tb), calls: ta.len() })
}

/// Times `a` alone, then `b` alone (each warmed up by the caller, each until it has run
/// for `min_time` in at least 5 calls, or `5 * min_time` in at least 3): the figures of
/// calls back to back, weights left in cache by the previous call of the same side.
pub fn back_to_back<E>(
    min_time: Duration,
    mut a: impl FnMut() -> Result<Duration, E>,
    mut b: impl FnMut() -> Result<Duration, E>,
) -> Result<Pair, E> {
    let alone = |f: &mut dyn FnMut() -> Result<Duration, E>| {
        let (mut times, mut sum) = (Vec::new(), Duration::ZERO);
        while !((times.len() >= 5 && sum >= min_time)
            || (times.len() >= 3 && sum >= 5 * min_time)
            || times.len() >= MAX_CALLS)
        {
            let d = f()?;
            times.push(d);
            sum += d;
        }
        Ok((median(&mut times), times.len()))
    };
    let (ta, calls) = alone(&mut a)?;
    let (tb, _) = alone(&mut b)?;
    Ok(Pair { a: ta, b: tb, calls })
}

fn median(v: &mut [Duration]) -> f64 {
    v.sort_unstable();
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2].as_secs_f64(),
        n => (v[n / 2 - 1].as_secs_f64() + v[n / 2].as_secs_f64()) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_alternation_and_settling() {
        for settle in [false, true] {
            let mut order = Vec::new();
            let log = std::cell::RefCell::new(&mut order);
            let ms = Duration::from_millis;
            let p = interleaved::<()>(
                ms(5),
                settle,
                || {
                    log.borrow_mut().push('a');
                    Ok(ms(2))
                },
                || {
                    log.borrow_mut().push('b');
                    Ok(ms(1))
                },
            )
            .expect("runs");
            assert_eq!((p.a, p.b, p.calls), (0.002, 0.001, 5));
            let want: &[char] = if settle {
                &['a', 'a', 'b', 'b', 'b', 'b', 'a', 'a']
            } else {
                &['a', 'b', 'b', 'a']
            };
            assert_eq!(&order[..want.len()], want);
            assert_eq!(order.len(), if settle { 20 } else { 10 });
        }
        let p = back_to_back::<()>(
            Duration::from_millis(5),
            || Ok(Duration::from_millis(2)),
            || Ok(Duration::from_millis(1)),
        )
        .expect("runs");
        assert_eq!((p.a, p.b, p.calls), (0.002, 0.001, 5));
        let mut v = [3, 1, 2, 4].map(Duration::from_secs);
        assert_eq!(median(&mut v), 2.5);
        let r = interleaved(Duration::ZERO, false, || Err(7), || Ok(Duration::ZERO));
        assert_eq!(r.map(|p| p.calls), Err(7));
    }
}
