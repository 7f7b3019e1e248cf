//! A progress bar on stderr for the main job's long table. On a terminal it redraws one
//! line in place; when stderr is a file or a pipe it writes a line at every tenth of the
//! work instead, so logs stay readable.

use std::io::{IsTerminal, Write};
use std::time::Instant;

/// Progress over a known number of steps.
pub struct Progress {
    total: usize,
    done: usize,
    started: Instant,
    terminal: bool,
    last_tenth: usize,
}

const WIDTH: usize = 30;

impl Progress {
    /// A bar for `total` steps (drawn at the first [`Progress::step`]).
    pub fn new(total: usize) -> Progress {
        Progress {
            total: total.max(1),
            done: 0,
            started: Instant::now(),
            terminal: std::io::stderr().is_terminal(),
            last_tenth: 0,
        }
    }

    /// The text of the bar after `done` of `total` steps, with `what` is being done now.
    pub fn render(done: usize, total: usize, elapsed_secs: u64, what: &str) -> String {
        let total = total.max(1);
        let done = done.min(total);
        let filled = WIDTH * done / total;
        format!(
            "[{}{}] {done:>4}/{total} {:>3}% {:>2}:{:02} {what}",
            "#".repeat(filled),
            ".".repeat(WIDTH - filled),
            100 * done / total,
            elapsed_secs / 60,
            elapsed_secs % 60,
        )
    }

    /// Announces the step about to run (`what`), counting the previous one as done.
    pub fn step(&mut self, what: &str) {
        let line = Progress::render(self.done, self.total, self.started.elapsed().as_secs(), what);
        self.done += 1;
        let mut err = std::io::stderr().lock();
        // Progress output is best effort: a closed stderr must not stop the benchmark.
        if self.terminal {
            let _ = write!(err, "\r{line:<100}");
            let _ = err.flush();
        } else {
            let tenth = 10 * self.done / self.total;
            if tenth > self.last_tenth || self.done == 1 {
                self.last_tenth = tenth;
                let _ = writeln!(err, "{line}");
            }
        }
    }

    /// Clears the bar (on a terminal) so the table that follows starts on a clean line.
    pub fn finish(&mut self) {
        if self.terminal {
            let _ = write!(std::io::stderr().lock(), "\r{:<100}\r", "");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Progress;

    #[test]
    fn the_bar_fills_with_the_steps() {
        assert_eq!(
            Progress::render(0, 4, 0, "q4_0"),
            "[..............................]    0/4   0%  0:00 q4_0"
        );
        let half = Progress::render(2, 4, 75, "x");
        assert!(half.starts_with(&format!("[{}{}]", "#".repeat(15), ".".repeat(15))), "{half}");
        assert!(half.ends_with(" 50%  1:15 x"), "{half}");
        let over = Progress::render(9, 4, 0, "");
        assert!(over.contains(&"#".repeat(30)) && over.contains("4/4 100%"), "{over}");
    }
}
