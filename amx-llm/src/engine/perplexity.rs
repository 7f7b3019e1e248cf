//! llama-perplexity's method: non-overlapping chunks of `ctx` tokens, each run from
//! position 0 with an empty cache (its first token replaced by BOS when the model adds
//! one), scored on its second half: the negative log-likelihood of token `j + 1` under
//! the logits of position `j`, for `j` in `[ctx / 2, ctx - 1)`.

use super::error::EngineError;
use super::session::Engine;

/// The outcome of a perplexity run.
#[derive(Clone, Debug, PartialEq)]
pub struct Perplexity {
    /// `exp(mean nll)`.
    pub ppl: f64,
    /// Tokens of the text.
    pub tokens: usize,
    /// Chunks run.
    pub chunks: usize,
    /// Tokens scored.
    pub scored: usize,
    /// Whether any logit was NaN.
    pub saw_nan: bool,
}

/// The natural log of the softmax of `logits` at `target`, in f64.
pub fn log_prob(logits: &[f32], target: usize) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    f64::from(logits[target] - max) - sum.ln()
}

/// Perplexity of `engine` on `ids` (the whole text, tokenized) in chunks of `ctx`, at
/// most `max_chunks` of them; `bos` replaces each chunk's first token when the model
/// adds BOS. `progress` is called after each chunk with (chunk, chunks, ppl so far).
///
/// Errors: [`EngineError::Context`] when the text has fewer than `ctx` tokens, or `ctx`
/// is below 4 or past the engine's context; the engine's errors.
pub fn perplexity(
    engine: &mut Engine,
    ids: &[u32],
    ctx: usize,
    bos: Option<u32>,
    max_chunks: Option<usize>,
    mut progress: impl FnMut(usize, usize, f64),
) -> Result<Perplexity, EngineError> {
    let mut chunks = ids.len() / ctx.max(1);
    if let Some(m) = max_chunks {
        chunks = chunks.min(m);
    }
    if ctx < 4 || chunks == 0 || ctx > engine.options().context {
        return Err(EngineError::Context {
            past: 0,
            tokens: ctx,
            capacity: engine.options().context.min(ids.len()),
        });
    }
    let n_vocab = engine.hparams().n_vocab;
    let (mut nll, mut scored, mut saw_nan) = (0.0f64, 0usize, false);
    for c in 0..chunks {
        let mut chunk = ids[c * ctx..(c + 1) * ctx].to_vec();
        if let Some(b) = bos {
            chunk[0] = b;
        }
        engine.reset();
        let first = ctx / 2;
        // Logits of positions first..ctx (the last row is not scored).
        let logits = engine.step(&chunk, ctx - first)?;
        for j in first..ctx - 1 {
            let row = &logits[(j - first) * n_vocab..][..n_vocab];
            saw_nan |= row.iter().any(|v| v.is_nan());
            nll -= log_prob(row, chunk[j + 1] as usize);
            scored += 1;
        }
        progress(c + 1, chunks, (nll / scored as f64).exp());
    }
    engine.reset();
    Ok(Perplexity { ppl: (nll / scored as f64).exp(), tokens: ids.len(), chunks, scored, saw_nan })
}
