//! The inference runtime every model shares: how many threads tract's kernels
//! may use, and [`OnnxModel`], an ONNX graph that keeps one optimised plan per
//! concrete input shape.
//!
//! Why threads are set here, once: tract runs a plan on the calling thread
//! unless its linear-algebra crate is built with `multithread-mm` (the
//! workspace enables it) and a rayon pool is installed as its executor. The
//! pool is process-wide, so the server (or an xtask) calls [`configure`] once
//! at start-up; every model, whoever loaded it, then splits its matrix
//! products and large element-wise kernels across that many threads. Without
//! a call, tract stays single-threaded, as before.
//!
//! Why plans are cached by shape: tract optimises a graph for fixed
//! dimensions (kernel choice, packing, memory plan), which takes from tens of
//! milliseconds to seconds, and the optimised plan runs several times faster
//! than the generic graph. Callers keep the number of shapes small (padding to
//! buckets); a few plans per model stay in memory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tract_linalg::multithread::{Executor, multithread_tract_scope, set_default_executor};
use tract_onnx::prelude::*;

/// Threads tract's kernels use; 1 until [`configure`] says otherwise.
static THREADS: AtomicUsize = AtomicUsize::new(1);

/// Lets tract's kernels use `threads` threads (at least 1) in every model of
/// this process, and returns the number in effect. Call it once at start-up,
/// before the first inference; calling it again replaces the pool (the
/// benchmark does, to compare thread counts). One thread means no pool at all:
/// kernels run on the caller's thread.
///
/// On a machine serving several verifications at once, the pool is shared:
/// two requests running models at the same time take turns on its threads
/// rather than oversubscribing the cores.
pub fn configure(threads: usize) -> usize {
    let threads = threads.max(1);
    let executor = if threads == 1 {
        Executor::SingleThread
    } else {
        Executor::multithread_with_name(threads, "kyc-inference")
    };
    set_default_executor(executor);
    THREADS.store(threads, Ordering::Relaxed);
    threads
}

/// The thread count [`configure`] set (1 before any call).
pub fn threads() -> usize {
    THREADS.load(Ordering::Relaxed)
}

/// The cores this process may use: the natural argument to [`configure`].
pub fn available_threads() -> usize {
    std::thread::available_parallelism()
        .map(std::num::NonZeroUsize::get)
        .unwrap_or(1)
}

/// Runs `f` with every model it runs on this thread alone, whatever
/// [`configure`] set: for work that already runs beside other work (one
/// frame of several, the document beside the face), where splitting each
/// layer over the shared pool as well would only make the threads wait on
/// each other.
pub fn alone<R>(f: impl FnOnce() -> R) -> R {
    multithread_tract_scope(Executor::SingleThread, f)
}

/// Held while a model's run is on the pool with its threads kept awake
/// ([`run_awake`]): one such run at a time.
static AWAKE_RUN: Mutex<()> = Mutex::new(());

/// Runs `f`, a model's run, on the inference pool, with its other threads
/// kept awake until `f` returns, when `awake` (the model has layers that
/// split over threads, see `graph::splits_over_threads`); otherwise, or
/// without a pool, on the calling thread.
///
/// Why: every layer that splits its rows hands half of them to another
/// pool thread. A rayon thread left idle goes to sleep within microseconds,
/// and waking it took about 40 µs here, against 0.5 µs for a thread that
/// is polling for work: per layer, on models of 30 to 100 layers. So for
/// the length of a run, each other thread runs a job that polls for work
/// (`rayon::yield_now`, which runs any job waiting) until the run is done;
/// onnxruntime's pool spins the same way by default. Measured in one
/// process, taking turns run by run (2 threads, `cargo xtask bench ops`
/// while this was written): CenterFace, faceres and PP-OCR 5–14 % faster,
/// the anti-spoofing model 6–13 %. The liveness model, whose layers are
/// all too small to split, lost about 50 µs to the hop onto the pool,
/// hence `awake`.
///
/// One run at a time: a run on the pool may be picked up by any pool
/// thread waiting inside another run's layer, and tract's matrix product
/// keeps per-thread scratch space borrowed across that wait; a second run
/// on the same thread would find it taken. While one run has the pool
/// awake, others run from their own threads as before; the polling threads
/// share out their layers too.
///
/// Why it cannot deadlock: a polling job stops as soon as `f` is done, and
/// returns at once if it starts on the thread running `f` (which could be
/// waiting for it below).
pub(crate) fn run_awake<R: Send>(awake: bool, f: impl FnOnce() -> R + Send) -> R {
    let Executor::MultiThread(pool) = tract_linalg::multithread::current_tract_executor() else {
        return f();
    };
    let others = pool.current_num_threads().saturating_sub(1);
    if !awake || others == 0 {
        return f();
    }
    let Ok(_one_at_a_time) = AWAKE_RUN.try_lock() else {
        return f();
    };
    /// Tells the polling jobs to stop when `f` returns, or unwinds.
    struct Done<'a>(&'a AtomicBool);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Release);
        }
    }
    let done = AtomicBool::new(false);
    pool.scope(|scope| {
        let body = rayon::current_thread_index();
        for _ in 0..others {
            let done = &done;
            scope.spawn(move |_| {
                if rayon::current_thread_index() == body {
                    return;
                }
                while !done.load(Ordering::Acquire) {
                    match rayon::yield_now() {
                        Some(rayon::Yield::Executed) => {}
                        Some(rayon::Yield::Idle) => std::hint::spin_loop(),
                        None => return,
                    }
                }
            });
        }
        let _done = Done(&done);
        // The body runs on a pool thread: the caller's executor goes with
        // it, whether `configure` set it or a scope did.
        multithread_tract_scope(Executor::MultiThread(pool.clone()), f)
    })
}

/// `work` on every item, the results in the items' order. The items are
/// spread over at most `threads` scoped threads (callers pass [`threads`],
/// what inference may use), each running its models [`alone`]: a model's
/// layers gain less than twice from a second core (the small ones nothing),
/// while independent model runs side by side keep every core busy.
/// `panicked` makes the error of an item whose thread panicked.
pub fn map_side_by_side<T, R, E>(
    threads: usize,
    items: &[T],
    work: impl Fn(&T) -> Result<R, E> + Sync,
    panicked: impl Fn() -> E,
) -> Result<Vec<R>, E>
where
    T: Sync,
    R: Send,
    E: Send,
{
    let workers = threads.clamp(1, items.len().max(1));
    if workers == 1 {
        return items.iter().map(work).collect();
    }
    let mut slots: Vec<Option<Result<R, E>>> = (0..items.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let work = &work;
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                scope.spawn(move || {
                    // Each worker runs its models on its own thread alone:
                    // the workers already keep the cores busy, and every
                    // kernel splitting its rows over the shared pool as
                    // well would only make the workers wait on each other.
                    alone(|| {
                        (w..items.len())
                            .step_by(workers)
                            .map(|i| (i, work(&items[i])))
                            .collect::<Vec<_>>()
                    })
                })
            })
            .collect();
        for handle in handles {
            // A panicking thread leaves its slots empty: reported below.
            if let Ok(results) = handle.join() {
                for (i, result) in results {
                    slots[i] = Some(result);
                }
            }
        }
    });
    slots
        .into_iter()
        .map(|slot| slot.unwrap_or_else(|| Err(panicked())))
        .collect()
}

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model file {}: {message}", path.display())]
    Load { path: PathBuf, message: String },
    #[error("model {}: {message}", path.display())]
    Inference { path: PathBuf, message: String },
}

/// An optimised, runnable plan for one input shape.
pub type Plan = Arc<TypedRunnableModel>;

/// Plans kept per model; the least recently built goes first beyond this.
const MAX_PLANS: usize = 8;

/// One ONNX graph with a single `f32` input, planned lazily per input shape.
/// Share it behind `&self`: the plan cache is behind a mutex, and a plan is
/// built outside it so that other shapes need not wait.
pub struct OnnxModel {
    path: PathBuf,
    graph: InferenceModel,
    /// (shape, plan, whether a run keeps the pool awake), oldest first.
    plans: Mutex<Vec<(Vec<usize>, Plan, bool)>>,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl OnnxModel {
    /// Reads the graph; nothing is optimised until a shape is asked for.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        if !path.is_file() {
            return Err(ModelError::Load {
                path: path.to_path_buf(),
                message: "no such file; run `cargo xtask models`".into(),
            });
        }
        let graph = tract_onnx::onnx()
            .model_for_path(path)
            .map_err(|err| ModelError::Load {
                path: path.to_path_buf(),
                message: format!("{err:#}"),
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            graph,
            plans: Mutex::new(Vec::new()),
        })
    }

    /// [`OnnxModel::load`], then the plan for `shape` built at once, so a
    /// model with a fixed input fails at load time rather than on first use
    /// and its first request is not slow.
    pub fn load_for_shape(path: &Path, shape: &[usize]) -> Result<Self, ModelError> {
        let model = Self::load(path)?;
        model.plan(shape)?;
        Ok(model)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The optimised plan for `shape`, built on first use: the graph is typed,
    /// decluttered, rewritten where tract is slow (`graph/`), then
    /// optimised.
    pub fn plan(&self, shape: &[usize]) -> Result<Plan, ModelError> {
        self.planned(shape).map(|(plan, _)| plan)
    }

    /// The plan for `shape`, and whether its runs keep the pool's threads
    /// awake ([`run_awake`]).
    fn planned(&self, shape: &[usize]) -> Result<(Plan, bool), ModelError> {
        if let Some(planned) = self.cached(shape) {
            return Ok(planned);
        }
        let plan = self
            .graph
            .clone()
            .with_input_fact(0, f32::fact(shape).into())
            .and_then(|model| model.into_typed())
            .and_then(|model| model.into_decluttered())
            .and_then(|mut model| {
                crate::graph::speed_up(&mut model)?;
                model.into_optimized()
            })
            .and_then(|model| model.into_runnable())
            .map_err(|err| ModelError::Load {
                path: self.path.clone(),
                message: format!("cannot plan for input {shape:?}: {err:#}"),
            })?;
        let mut plans = self
            .plans
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let awake = crate::graph::splits_over_threads(plan.model());
        if !plans.iter().any(|(s, ..)| s == shape) {
            if plans.len() >= MAX_PLANS {
                plans.remove(0);
            }
            plans.push((shape.to_vec(), plan.clone(), awake));
        }
        Ok((plan, awake))
    }

    fn cached(&self, shape: &[usize]) -> Option<(Plan, bool)> {
        let plans = self
            .plans
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        plans
            .iter()
            .find(|(s, ..)| s == shape)
            .map(|(_, plan, awake)| (plan.clone(), *awake))
    }

    /// Runs the model on one input of `shape` (row-major, `input.len()` must
    /// be the product of `shape`) and returns every output. The vector
    /// becomes the input tensor without a copy.
    pub fn run(&self, shape: &[usize], input: Vec<f32>) -> Result<TVec<TValue>, ModelError> {
        let (plan, awake) = self.planned(shape)?;
        let tensor = self.tensor(shape, input)?;
        run_awake(awake, move || plan.run(tvec!(tensor.into())))
            .map_err(|err| self.inference(&format!("{err:#}")))
    }

    /// As [`OnnxModel::run`], with every output copied out flat, in the
    /// graph's output order.
    pub fn run_flat(&self, shape: &[usize], input: Vec<f32>) -> Result<Vec<Vec<f32>>, ModelError> {
        self.run(shape, input)?
            .iter()
            .map(|output| {
                output
                    .to_plain_array_view::<f32>()
                    .map(|view| view.iter().copied().collect())
                    .map_err(|err| self.inference(&format!("{err:#}")))
            })
            .collect()
    }

    /// Runs the model once on `input` and returns how long each node of the
    /// optimised plan took, in evaluation order: what `cargo xtask bench ops`
    /// prints to show where inference time goes.
    pub fn profile(&self, shape: &[usize], input: Vec<f32>) -> Result<Vec<NodeTime>, ModelError> {
        let (plan, awake) = self.planned(shape)?;
        let tensor = self.tensor(shape, input)?;
        run_awake(awake, move || -> TractResult<Vec<NodeTime>> {
            let mut state = TypedSimpleState::new(&plan)?;
            let mut times = Vec::new();
            state.run_plan_with_eval(tvec!(tensor.into()), |session, op_state, node, inputs| {
                let start = std::time::Instant::now();
                let outputs = tract_onnx::tract_core::plan::eval(session, op_state, node, inputs);
                times.push(NodeTime {
                    node: node.name.clone(),
                    op: node.op().name().to_string(),
                    detail: node.op().info().unwrap_or_default().join("; "),
                    output: node
                        .outputs
                        .first()
                        .map(|o| format!("{:?}", o.fact.shape))
                        .unwrap_or_default(),
                    seconds: start.elapsed().as_secs_f64(),
                });
                outputs
            })?;
            Ok(times)
        })
        .map_err(|err| self.inference(&format!("{err:#}")))
    }

    /// `input` as a tensor of `shape`, without a copy.
    fn tensor(&self, shape: &[usize], input: Vec<f32>) -> Result<Tensor, ModelError> {
        Ok(tract_ndarray::Array::from_shape_vec(shape, input)
            .map_err(|err| self.inference(&err))?
            .into_tensor())
    }

    fn inference(&self, err: &dyn std::fmt::Display) -> ModelError {
        ModelError::Inference {
            path: self.path.clone(),
            message: err.to_string(),
        }
    }
}

/// One node's share of a profiled run.
#[derive(Debug, Clone)]
pub struct NodeTime {
    pub node: String,
    pub op: String,
    /// The op's own description (kernel, strides, groups…).
    pub detail: String,
    /// The shape of its first output.
    pub output: String,
    pub seconds: f64,
}

/// A flat view of one `f32` output, without copying.
pub fn output_slice(output: &TValue) -> Result<&[f32], String> {
    output
        .try_as_plain_ram()
        .and_then(|v| v.as_slice::<f32>())
        .map_err(|err| format!("{err:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configure_clamps_and_reports_threads() {
        assert_eq!(configure(0), 1);
        assert_eq!(threads(), 1);
        assert!(available_threads() >= 1);
    }

    #[test]
    fn side_by_side_keeps_the_order_and_every_error() {
        for threads in [1, 3] {
            let items: Vec<u32> = (0..10).collect();
            let doubled =
                map_side_by_side(threads, &items, |&i| Ok::<_, String>(i * 2), String::new);
            assert_eq!(doubled, Ok((0..10).map(|i| i * 2).collect::<Vec<_>>()));
            let failed = map_side_by_side(
                threads,
                &items,
                |&i| {
                    if i == 7 {
                        Err(format!("item {i}"))
                    } else {
                        Ok(i)
                    }
                },
                String::new,
            );
            assert_eq!(failed, Err("item 7".to_string()));
        }
        let panicked = map_side_by_side(
            3,
            &[1u32, 2, 3],
            |&i| {
                assert!(i != 2, "a worker panics");
                Ok(i)
            },
            || "panicked".to_string(),
        );
        assert_eq!(panicked, Err("panicked".to_string()));
    }

    #[test]
    fn a_missing_file_says_which_command_makes_it() {
        let err = OnnxModel::load(Path::new("/nonexistent/model.onnx"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("cargo xtask models"), "{err}");
    }
}
