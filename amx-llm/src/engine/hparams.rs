//! Hyper-parameters from a GGUF file's metadata (`{arch}.embedding_length`, ...).

use amx_gguf::{GgufError, GgufFile, Value};
use amx_runtime::op::RopeMode;

use super::error::EngineError;

/// The architectures this engine runs.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// `llama` (SmolLM2, Llama, Mistral), with Mixtral-style experts when
    /// `llama.expert_count` is set.
    Llama,
    /// `qwen2` (biases on q, k and v).
    Qwen2,
    /// `qwen3` (per-head q/k RMS norm).
    Qwen3,
    /// `qwen3moe` (qwen3 with experts).
    Qwen3Moe,
    /// `gemma3`.
    Gemma3,
}

impl Arch {
    /// The name in `general.architecture`.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Qwen3Moe => "qwen3moe",
            Arch::Gemma3 => "gemma3",
        }
    }
}

/// Everything the forward pass needs to know about the model.
#[derive(Clone, Debug, PartialEq)]
pub struct Hparams {
    /// The architecture.
    pub arch: Arch,
    /// Width of the residual stream.
    pub n_embd: usize,
    /// Layers.
    pub n_layer: usize,
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads (grouped-query attention).
    pub n_head_kv: usize,
    /// Values per key head (and query head).
    pub head_k: usize,
    /// Values per value head.
    pub head_v: usize,
    /// FFN width (per expert for MoE).
    pub n_ff: usize,
    /// RMS norm epsilon.
    pub eps: f32,
    /// RoPE pairing.
    pub rope_mode: RopeMode,
    /// Values rotated per head.
    pub rope_dims: usize,
    /// RoPE base of global layers.
    pub rope_base: f32,
    /// RoPE base of sliding-window layers.
    pub rope_base_swa: f32,
    /// RoPE position factor (1 / linear scaling).
    pub rope_scale: f32,
    /// Vocabulary.
    pub n_vocab: usize,
    /// Experts per MoE layer (0: dense).
    pub n_expert: usize,
    /// Experts used per token.
    pub n_expert_used: usize,
    /// Attention score factor.
    pub attn_scale: f32,
    /// Sliding window (0: none).
    pub swa: usize,
    /// Every `swa_pattern`-th layer (the last of each group) is global (0: all global).
    pub swa_pattern: usize,
}

/// An unsigned integer of any GGUF integer type.
fn uint(file: &GgufFile, key: &str) -> Result<usize, EngineError> {
    let v = file.value(key)?;
    let n: Option<u64> = match v {
        Value::U8(x) => Some(u64::from(*x)),
        Value::U16(x) => Some(u64::from(*x)),
        Value::U32(x) => Some(u64::from(*x)),
        Value::U64(x) => Some(*x),
        Value::I8(x) => u64::try_from(*x).ok(),
        Value::I16(x) => u64::try_from(*x).ok(),
        Value::I32(x) => u64::try_from(*x).ok(),
        Value::I64(x) => u64::try_from(*x).ok(),
        Value::F32(_) | Value::F64(_) | Value::Bool(_) | Value::String(_) | Value::Array(_) => None,
    };
    n.and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| EngineError::BadModel { what: format!("{key} is not a count: {v:?}") })
}

fn uint_or(file: &GgufFile, key: &str, default: usize) -> Result<usize, EngineError> {
    if file.get(key).is_none() { Ok(default) } else { uint(file, key) }
}

fn float_or(file: &GgufFile, key: &str, default: f32) -> Result<f32, EngineError> {
    match file.get(key) {
        None => Ok(default),
        Some(Value::F32(x)) => Ok(*x),
        Some(Value::F64(x)) => Ok(*x as f32),
        Some(v) => Err(EngineError::BadModel { what: format!("{key} is not a number: {v:?}") }),
    }
}

impl Hparams {
    /// Reads the hyper-parameters of `file`.
    ///
    /// Errors: [`EngineError::UnsupportedArch`], [`EngineError::Gguf`] for a missing
    /// key, [`EngineError::BadModel`] for values the engine cannot use.
    pub fn from_gguf(file: &GgufFile) -> Result<Hparams, EngineError> {
        let name = file.get_str("general.architecture")?;
        let arch = match name {
            "llama" => Arch::Llama,
            "qwen2" => Arch::Qwen2,
            "qwen3" => Arch::Qwen3,
            "qwen3moe" => Arch::Qwen3Moe,
            "gemma3" => Arch::Gemma3,
            other => return Err(EngineError::UnsupportedArch { arch: other.to_owned() }),
        };
        let a = arch.name();
        let key = |k: &str| format!("{a}.{k}");
        let n_embd = uint(file, &key("embedding_length"))?;
        let n_head = uint(file, &key("attention.head_count"))?;
        let n_head_kv = uint_or(file, &key("attention.head_count_kv"), n_head)?;
        if n_head == 0 || n_head_kv == 0 || !n_head.is_multiple_of(n_head_kv) {
            return Err(EngineError::BadModel {
                what: format!("{n_head} query heads do not group over {n_head_kv} kv heads"),
            });
        }
        let head_k = uint_or(file, &key("attention.key_length"), n_embd / n_head)?;
        let head_v = uint_or(file, &key("attention.value_length"), head_k)?;
        let n_vocab = match file.get(&key("vocab_size")) {
            Some(_) => uint(file, &key("vocab_size"))?,
            None => {
                let t = file.tensor("token_embd.weight")?;
                usize::try_from(t.ne[1])
                    .map_err(|_| GgufError::MissingKey { key: key("vocab_size") })?
            }
        };
        let rope_base = float_or(file, &key("rope.freq_base"), 10000.0)?;
        let rope_scale = match file.get(&key("rope.scaling.type")) {
            Some(Value::String(s)) if s == "linear" => {
                1.0 / float_or(file, &key("rope.scaling.factor"), 1.0)?
            }
            Some(Value::String(s)) if s == "none" => 1.0,
            None => 1.0,
            Some(v) => {
                return Err(EngineError::BadModel {
                    what: format!("unsupported rope scaling {v:?}"),
                });
            }
        };
        let (rope_mode, attn_scale, swa, swa_pattern, rope_base_swa) = match arch {
            Arch::Llama => (RopeMode::Normal, 1.0 / (head_k as f32).sqrt(), 0, 0, rope_base),
            Arch::Qwen2 | Arch::Qwen3 | Arch::Qwen3Moe => {
                (RopeMode::Neox, 1.0 / (head_k as f32).sqrt(), 0, 0, rope_base)
            }
            // llama.cpp: 1/sqrt(query_pre_attn_scalar) with the scalar = key_length (all
            // sizes but 27B), every 6th layer global, local layers at base 10000.
            Arch::Gemma3 => (
                RopeMode::Neox,
                1.0 / (head_k as f32).sqrt(),
                uint_or(file, &key("attention.sliding_window"), 0)?,
                6,
                10000.0,
            ),
        };
        let hp = Hparams {
            arch,
            n_embd,
            n_layer: uint(file, &key("block_count"))?,
            n_head,
            n_head_kv,
            head_k,
            head_v,
            // qwen3moe's experts have their own width.
            n_ff: match file.get(&key("expert_feed_forward_length")) {
                Some(_) => uint(file, &key("expert_feed_forward_length"))?,
                None => uint(file, &key("feed_forward_length"))?,
            },
            eps: float_or(file, &key("attention.layer_norm_rms_epsilon"), 1e-5)?,
            rope_mode,
            rope_dims: uint_or(file, &key("rope.dimension_count"), head_k)?,
            rope_base,
            rope_base_swa,
            rope_scale,
            n_vocab,
            n_expert: uint_or(file, &key("expert_count"), 0)?,
            n_expert_used: uint_or(file, &key("expert_used_count"), 0)?,
            attn_scale,
            swa,
            swa_pattern,
        };
        // Every layer has tensors of its own: a count past the file's tensors is wrong
        // (and would size allocations by it).
        if hp.n_layer == 0 || hp.n_layer > file.tensors().len() {
            return Err(EngineError::BadModel {
                what: format!(
                    "{} layers with {} tensors in the file",
                    hp.n_layer,
                    file.tensors().len()
                ),
            });
        }
        if hp.rope_dims > head_k || !hp.rope_dims.is_multiple_of(2) || hp.rope_dims == 0 {
            return Err(EngineError::BadModel {
                what: format!("rope dimension {} for heads of {head_k}", hp.rope_dims),
            });
        }
        if hp.n_expert > 0 && (hp.n_expert_used == 0 || hp.n_expert_used > hp.n_expert) {
            return Err(EngineError::BadModel {
                what: format!("{} experts used of {}", hp.n_expert_used, hp.n_expert),
            });
        }
        Ok(hp)
    }

    /// Whether layer `l` attends through a sliding window.
    pub fn is_swa(&self, l: usize) -> bool {
        self.swa > 0 && self.swa_pattern > 0 && !(l + 1).is_multiple_of(self.swa_pattern)
    }
}
