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
use amx_runtime::exec;
use amx_runtime::placement::{self, Placement, Weights};
use amx_runtime::pool::Pool;
use amx_runtime::sched::{self, Schedule};
use amx_runtime::tensor::{TensorId, f32_from_bytes, i32_to_bytes};

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

/// A step graph with its schedule, built once per step shape.
struct Step {
    g: StepGraph,
    schedule: Schedule,
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
        if options.context == 0 || options.threads == 0 {
            return Err(EngineError::BadModel {
                what: format!(
                    "context {} and threads {} must be at least 1",
                    options.context, options.threads
                ),
            });
        }
        let pool = Arc::new(Pool::new(options.threads));
        let amx: Buft = Arc::new(AmxBufferType::with_pool(pool).with_path(options.path));
        let cpu = CpuBackend::with_extra(vec![amx.clone()]);
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
        };
        let schedule = engine.schedule(&g)?;
        engine.steps.insert((1, 1), Step { g, schedule });
        Ok(engine)
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
        let (t, cap) = (tokens.len(), self.options.context);
        if t == 0 || rows == 0 || rows > t || self.past + t > cap {
            return Err(EngineError::Context { past: self.past, tokens: t, capacity: cap });
        }
        if let Some(&id) = tokens.iter().find(|&&id| id as usize >= self.hp.n_vocab) {
            return Err(EngineError::Token { id, vocab: self.hp.n_vocab });
        }
        if !self.steps.contains_key(&(t, rows)) {
            let g = model::build(&self.file, &self.hp, t, cap, rows)?;
            let schedule = self.schedule(&g)?;
            self.steps.insert((t, rows), Step { g, schedule });
        }
        let step = &self.steps[&(t, rows)];
        let g = &step.g;
        let ids: Vec<i32> = tokens.iter().map(|&id| id as i32).collect();
        let pos: Vec<i32> = (self.past..self.past + t).map(|p| p as i32).collect();
        let out: Vec<i32> = (t - rows..t).map(|r| r as i32).collect();
        let (ids, pos, out) = (i32_to_bytes(&ids), i32_to_bytes(&pos), i32_to_bytes(&out));
        let inputs = [(g.tokens, &ids[..]), (g.pos, &pos[..]), (g.out_rows, &out[..])];
        let state: Vec<(TensorId, &Buffer)> = g
            .cache
            .iter()
            .zip(&self.cache)
            .flat_map(|(&(ki, vi), (kb, vb))| [(ki, kb), (vi, vb)])
            .collect();
        let run = exec::run_with_state(
            &g.graph,
            &step.schedule,
            &self.backends(),
            &self.weights,
            &inputs,
            &state,
        )?;
        drop(state);
        // Append this step's keys and values to the cache.
        let past = self.past;
        for (&(k, v), (kb, vb)) in g.new_kv.iter().zip(&mut self.cache) {
            for (id, buf) in [(k, kb), (v, vb)] {
                let bytes = run.bytes(id)?;
                let at = past * bytes.len() / t;
                let dst = buf.host_bytes_mut().map_err(|e| EngineError::Exec(e.into()))?;
                dst[at..at + bytes.len()].copy_from_slice(&bytes);
            }
        }
        let logits = f32_from_bytes(&run.bytes(g.logits)?);
        self.past += t;
        Ok(logits)
    }
}
