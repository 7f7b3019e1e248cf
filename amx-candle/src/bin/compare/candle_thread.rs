//! candle's side of the comparison on a thread of its own (or, to reproduce the hazard
//! below, on the calling thread).
//!
//! candle-core 0.11.1's AMX kernel (Q4_K, M >= 32) runs `ldtilecfg` once per thread and
//! remembers that in a thread-local flag. When amx-rs runs on the same thread it loads its
//! own tile configuration, and candle then computes with the wrong tile shapes (NMSE
//! about 0.9 against amx-rs); when amx-runtime's pool has released the calling thread's
//! tiles (`tilerelease`), candle's next tile instruction faults (SIGILL). So candle's
//! calls run on a thread that never runs amx-rs; its own worker threads never do either.

use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use candle_core::quantized::QMatMul;
use candle_core::{Module, Tensor};

/// A request to the candle thread.
enum Msg {
    Load(QMatMul),
    Forward(Tensor),
}

/// A forward's output and the call's own duration.
type Reply = candle_core::Result<(Tensor, Duration)>;

fn timed_forward(qmm: &QMatMul, xs: &Tensor) -> Reply {
    let t = Instant::now();
    let y = qmm.forward(xs)?;
    Ok((y, t.elapsed()))
}

/// Where candle's calls run.
pub struct CandleSide {
    inner: Inner,
}

enum Inner {
    /// On a dedicated thread.
    Thread { tx: Option<Sender<Msg>>, rx: Receiver<Reply>, handle: Option<JoinHandle<()>> },
    /// On the calling thread (`--same-thread`).
    Here(Option<QMatMul>),
}

impl CandleSide {
    /// candle on the calling thread.
    pub fn here() -> CandleSide {
        CandleSide { inner: Inner::Here(None) }
    }

    /// candle on a thread of its own.
    pub fn spawn() -> std::io::Result<CandleSide> {
        let (tx, requests) = mpsc::channel::<Msg>();
        let (replies, rx) = mpsc::channel::<Reply>();
        let handle = thread::Builder::new().name("candle".into()).spawn(move || {
            let mut qmm = None;
            for msg in requests {
                match msg {
                    Msg::Load(m) => qmm = Some(m),
                    Msg::Forward(xs) => {
                        let reply = match &qmm {
                            Some(m) => timed_forward(m, &xs),
                            None => Err(candle_core::Error::msg("no weights loaded")),
                        };
                        if replies.send(reply).is_err() {
                            return;
                        }
                    }
                }
            }
        })?;
        Ok(CandleSide { inner: Inner::Thread { tx: Some(tx), rx, handle: Some(handle) } })
    }

    /// Uses `qmm` for the following calls.
    pub fn load(&mut self, qmm: QMatMul) -> candle_core::Result<()> {
        match &mut self.inner {
            Inner::Thread { tx: Some(tx), .. } => {
                tx.send(Msg::Load(qmm)).map_err(|_| candle_core::Error::msg("candle thread gone"))
            }
            Inner::Thread { .. } => Err(candle_core::Error::msg("candle thread gone")),
            Inner::Here(slot) => {
                *slot = Some(qmm);
                Ok(())
            }
        }
    }

    /// One `QMatMul::forward`, its output and its own duration.
    pub fn forward(&self, xs: &Tensor) -> Reply {
        match &self.inner {
            Inner::Thread { tx: Some(tx), rx, .. } => {
                let gone = || candle_core::Error::msg("candle thread gone");
                tx.send(Msg::Forward(xs.clone())).map_err(|_| gone())?;
                rx.recv().map_err(|_| gone())?
            }
            Inner::Thread { .. } => Err(candle_core::Error::msg("candle thread gone")),
            Inner::Here(Some(m)) => timed_forward(m, xs),
            Inner::Here(None) => Err(candle_core::Error::msg("no weights loaded")),
        }
    }
}

impl Drop for CandleSide {
    fn drop(&mut self) {
        if let Inner::Thread { tx, handle, .. } = &mut self.inner {
            drop(tx.take());
            if let Some(h) = handle.take() {
                let _ = h.join();
            }
        }
    }
}
