//! The engine: a model's weights placed and loaded once, a KV cache, and steps run
//! through the runtime's scheduler.

use std::collections::HashMap;
use std::path::Path as FsPath;
use std::sync::Arc;

use amx_core::gemm::Path;
use amx_gguf::GgufFile;
use amx_runtime::backend::Backend;
use amx_runtime::backend::cpu::CpuBackend;
use amx_runtime::backend::gpu_like::GpuLikeBackend;
use amx_runtime::buffer::amx::AmxBufferType;
use amx_runtime::buffer::host::host;
use amx_runtime::buffer::{Buffer, Buft};
use amx_runtime::error::ExecError;
use amx_runtime::exec::Prepared;
use amx_runtime::placement::{self, Placement, Weights};
use amx_runtime::pool::Pool;
use amx_runtime::sched::{self, Schedule};
use amx_runtime::tensor::{TensorId, f32_from_bytes, f32_view};

use super::error::EngineError;
use super::hparams::Hparams;
use super::model::{self, StepGraph};

/// How to run a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Threads of the matmul pool.
    pub threads: usize,
    /// The matmul path of the whole run (`Auto`: by row count).
    pub path: Path,
    /// Layers `0..gpu_layers` run on the GPU-like backend (weights in its memory).
    pub gpu_layers: usize,
    /// Positions the KV cache holds.
    pub context: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { threads: 1, path: Path::Auto, gpu_layers: 0, context: 512 }
    }
}

/// A step graph with its schedule and buffers, built once per step shape and reused
/// for every step of that shape.
struct Step {
    g: StepGraph,
    prepared: Prepared,
}

/// A loaded model ready to run steps.
pub struct Engine {
    file: GgufFile,
    hp: Hparams,
    options: Options,
    cpu: CpuBackend,
    gpu: GpuLikeBackend,
    placement: Placement,
    weights: Weights,
    steps: HashMap<(usize, usize), Step>,
    /// Per layer: k and v caches (`[Dk, Hkv, C]`, `[Dv, Hkv, C]` F32, host memory).
    cache: Vec<(Buffer, Buffer)>,
    past: usize,
    /// The inputs' bytes and the logits, reused step after step.
    io: Io,
}

/// Input bytes and output values kept from step to step, so that a step allocates
/// nothing once they have grown to its shape.
#[derive(Default)]
struct Io {
    tokens: Vec<u8>,
    pos: Vec<u8>,
    rows: Vec<u8>,
    logits: Vec<f32>,
}

/// Fills `out` with the little-endian bytes of `values`.
fn put_i32s(out: &mut Vec<u8>, values: impl Iterator<Item = i32>) {
    out.clear();
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("hp", &self.hp).field("past", &self.past).finish()
    }
}

impl Engine {
    /// Opens `path`, reads its hyper-parameters, places every weight (matmul weights in
    /// the AMX buffer type, or in the GPU-like backend's memory for its layers; the rest
    /// in host memory) and loads them once.
    ///
    /// Errors: [`EngineError`] naming what in the file or the options is wrong.
    pub fn open(path: impl AsRef<FsPath>, options: Options) -> Result<Engine, EngineError> {
        let file = GgufFile::open(path)?;
        Engine::from_file(file, options)
    }

    /// [`Engine::open`] on a file already read.
    ///
    /// Errors: as [`Engine::open`].
    pub fn from_file(file: GgufFile, options: Options) -> Result<Engine, EngineError> {
        let hp = Hparams::from_gguf(&file)?;
        // Positions are I32 in the graph.
        if options.context == 0 || options.context > i32::MAX as usize || options.threads == 0 {
            return Err(EngineError::BadModel {
                what: format!(
                    "context {} (1 to 2^31 - 1) and threads {} (at least 1)",
                    options.context, options.threads
                ),
            });
        }
        let pool = Arc::new(Pool::try_new(options.threads).map_err(|e| EngineError::BadModel {
            what: format!("{} threads: {e}", options.threads),
        })?);
        let amx: Buft = Arc::new(AmxBufferType::with_pool(pool.clone()).with_path(options.path));
        // The row-wise ops (norms, ROPE, activations, ...) of prefill steps over the pool:
        // the reference's bits on any path, for any number of threads.
        let mut cpu = CpuBackend::with_extra(vec![amx.clone()]).with_op_pool(pool.clone());
        // Prefill attention as BF16 GEMMs, except on the scalar path (exact f32 there).
        if options.path != Path::Scalar {
            cpu = cpu.with_attention_pool(pool, options.path);
        }
        let gpu = GpuLikeBackend::new();
        let g = model::build(&file, &hp, 1, options.context, 1)?;
        let layer_of: HashMap<TensorId, Option<usize>> =
            g.weights.iter().map(|w| (w.id, w.layer)).collect();
        let device = gpu.device_buft();
        let placement = placement::place(&g.graph, |id, _| {
            match layer_of.get(&id).copied().flatten() {
                // Host buffers, never packed ones, on the GPU-like backend's layers.
                Some(l) if l < options.gpu_layers => vec![device.clone(), host()],
                _ => vec![amx.clone(), host()],
            }
        })?;
        let names: HashMap<TensorId, &str> =
            g.weights.iter().map(|w| (w.id, w.file_name.as_str())).collect();
        let weights = placement.load(|id| file.tensor_bytes(names.get(&id)?).ok())?;
        drop(names);
        let mut cache = Vec::with_capacity(hp.n_layer);
        for &(k, v) in &g.cache {
            let alloc = |id| Buffer::alloc(&host(), g.graph.tensor(id).clone());
            let k = alloc(k).map_err(|e| EngineError::Exec(e.into()))?;
            let v = alloc(v).map_err(|e| EngineError::Exec(e.into()))?;
            cache.push((k, v));
        }
        let mut engine = Engine {
            file,
            hp,
            options,
            cpu,
            gpu,
            placement,
            weights,
            steps: HashMap::new(),
            cache,
            past: 0,
            io: Io::default(),
        };
        let step = engine.prepare(g)?;
        engine.steps.insert((1, 1), step);
        Ok(engine)
    }

    /// Schedules `g` and makes its buffers.
    fn prepare(&self, g: StepGraph) -> Result<Step, EngineError> {
        let schedule = self.schedule(&g)?;
        // Room for the attention scores and the router's sort; the arena grows if a
        // step needs more, then keeps its size.
        let scratch = 64 * 1024 + 8 * self.options.context + 16 * self.hp.n_expert;
        // The engine reads the logits and the new keys and values after a step.
        let keep: Vec<TensorId> =
            g.new_kv.iter().flat_map(|&(k, v)| [k, v]).chain([g.logits]).collect();
        let prepared = Prepared::new(&g.graph, &schedule, &self.backends(), scratch, &keep)?;
        Ok(Step { g, prepared })
    }

    fn backends(&self) -> [&dyn Backend; 2] {
        [&self.cpu, &self.gpu]
    }

    fn schedule(&self, g: &StepGraph) -> Result<Schedule, EngineError> {
        Ok(sched::schedule(&g.graph, &self.weights, &self.backends())?)
    }

    /// The hyper-parameters.
    pub fn hparams(&self) -> &Hparams {
        &self.hp
    }

    /// The options the engine was opened with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The model file.
    pub fn file(&self) -> &GgufFile {
        &self.file
    }

    /// Where every weight went, and why.
    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// Positions in the KV cache.
    pub fn past(&self) -> usize {
        self.past
    }

    /// Empties the KV cache (the next step starts at position 0).
    pub fn reset(&mut self) {
        self.past = 0;
    }

    /// Runs `tokens` at the next positions, appends their keys and values to the cache,
    /// and returns the logits of the last `rows` tokens (`n_vocab` values each, in
    /// order).
    ///
    /// Errors: [`EngineError::Context`], [`EngineError::Token`], and those of the
    /// runtime.
    pub fn step(&mut self, tokens: &[u32], rows: usize) -> Result<Vec<f32>, EngineError> {
        Ok(self.step_view(tokens, rows)?.to_vec())
    }

    /// [`Engine::step`], returning a view of logits the engine keeps: a step of a shape
    /// seen before (a decode step after the first) allocates nothing.
    ///
    /// Errors: as [`Engine::step`].
    pub fn step_view(&mut self, tokens: &[u32], rows: usize) -> Result<&[f32], EngineError> {
        let (t, cap) = (tokens.len(), self.options.context);
        if t == 0 || rows == 0 || rows > t || self.past + t > cap {
            return Err(EngineError::Context { past: self.past, tokens: t, capacity: cap });
        }
        if let Some(&id) = tokens.iter().find(|&&id| id as usize >= self.hp.n_vocab) {
            return Err(EngineError::Token { id, vocab: self.hp.n_vocab });
        }
        if !self.steps.contains_key(&(t, rows)) {
            // The decode shape stays; of the others (prefills), only the newest, so that
            // prompts of many lengths do not each keep a step's buffers.
            self.steps.retain(|&shape, _| shape == (1, 1));
            let g = model::build(&self.file, &self.hp, t, cap, rows)?;
            let step = self.prepare(g)?;
            self.steps.insert((t, rows), step);
        }
        let past = self.past;
        let io = &mut self.io;
        put_i32s(&mut io.tokens, tokens.iter().map(|&id| id as i32));
        put_i32s(&mut io.pos, (past..past + t).map(|p| p as i32));
        put_i32s(&mut io.rows, (t - rows..t).map(|r| r as i32));
        let backends: [&dyn Backend; 2] = [&self.cpu, &self.gpu];
        let Some(step) = self.steps.get_mut(&(t, rows)) else {
            return Err(EngineError::Context { past, tokens: t, capacity: cap });
        };
        let g = &step.g;
        let inputs = [(g.tokens, &io.tokens[..]), (g.pos, &io.pos[..]), (g.out_rows, &io.rows[..])];
        // At most two state tensors per layer, on the stack for the usual depths.
        let mut state: [(TensorId, &Buffer); 2 * MAX_STACK_LAYERS] = match self.cache.first() {
            Some((k, _)) => [(TensorId(0), k); 2 * MAX_STACK_LAYERS],
            None => return Err(EngineError::BadModel { what: "no layers".into() }),
        };
        let mut state_vec = Vec::new();
        let pairs =
            g.cache.iter().zip(&self.cache).flat_map(|(&(ki, vi), (kb, vb))| [(ki, kb), (vi, vb)]);
        let state: &[(TensorId, &Buffer)] = if self.cache.len() <= MAX_STACK_LAYERS {
            let mut n = 0;
            for (slot, p) in state.iter_mut().zip(pairs) {
                *slot = p;
                n += 1;
            }
            &state[..n]
        } else {
            state_vec.extend(pairs);
            &state_vec
        };
        step.prepared.run(&g.graph, &backends, &self.weights, &inputs, state)?;
        // Append this step's keys and values to the cache.
        for (&(k, v), (kb, vb)) in g.new_kv.iter().zip(&mut self.cache) {
            for (id, buf) in [(k, kb), (v, vb)] {
                let src = step.prepared.value(id).ok_or_else(|| missing(g, id))?;
                let len = src.desc().nbytes().ok_or_else(|| missing(g, id))?;
                let at = past * len / t;
                let dst = buf.host_bytes_mut().map_err(|e| EngineError::Exec(e.into()))?;
                let dst = &mut dst[at..at + len];
                if src.buft().is_host() {
                    dst.copy_from_slice(src.host_bytes().map_err(|e| EngineError::Exec(e.into()))?);
                } else {
                    src.buft().get_tensor(src, dst).map_err(|e| EngineError::Exec(e.into()))?;
                }
            }
        }
        let out = step.prepared.value(g.logits).ok_or_else(|| missing(g, g.logits))?;
        let bytes = out.host_bytes().map_err(|e| EngineError::Exec(e.into()))?;
        io.logits.clear();
        match f32_view(bytes) {
            Some(v) => io.logits.extend_from_slice(v),
            None => io.logits.extend(f32_from_bytes(bytes)),
        }
        self.past += t;
        Ok(&self.io.logits)
    }
}

/// Layers whose state tensors a step lists on the stack (deeper models use a vector).
const MAX_STACK_LAYERS: usize = 128;

fn missing(g: &StepGraph, id: TensorId) -> EngineError {
    EngineError::Exec(ExecError::Input { tensor: g.graph.tensor(id).name.clone() })
}
