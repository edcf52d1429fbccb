//! The seed's static-graph example: a pre-built TorchScript module trained under CyclicLR.
//!
//! Paddle's seed builds a static program, `x: [None, 4, 5] -> z = fc(x, 100) -> loss = mean(z)`,
//! and an executor feeds it random `x` and `y` of shape [3, 4, 5], 20 batches per epoch for
//! 5 epochs, stepping the scheduler after each optimizer step. tch's static graph is a
//! TorchScript module built ahead of time (`examples/static_graph/make_module.py`): `forward(x)`
//! flattens `x` to [N, 20] and applies a Linear(20, 100) whose parameters are `fc.weight` and
//! `fc.bias`, and `loss(x, y)` is `mean(forward(x))`. The seed declares and feeds `y` but its
//! loss never reads it; the module's `loss` takes `y` and ignores it likewise.
//!
//! [`StaticGraph::load`] checks everything about the file before training starts, so that a
//! wrong file is a [`StaticGraphError`] naming it, never a panic inside libtorch's calls.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::StdRng;
use tch::nn::{self, OptimizerConfig, VarStore};
use tch::{CModule, Device, Kind, Tensor, TrainableCModule};

use crate::train::{Summary, epoch_line, standard_normal};
use crate::{CyclicLr, CyclicLrConfig};

/// The shape of one fed batch, `x` and `y` alike: the seed's `np.random.randn(3, 4, 5)`.
pub const BATCH_SHAPE: [i64; 3] = [3, 4, 5];

/// The width of the seed's `fc(x, 100)`.
pub const OUTPUTS: i64 = 100;

/// The parameters the module must have, as they are named in the [`VarStore`] (TorchScript's
/// `fc.weight` becomes `fc_weight`), with their shapes; all trainable `float32`.
pub const PARAMETERS: [(&str, &[i64]); 2] =
    [("fc_weight", &[OUTPUTS, 20]), ("fc_bias", &[OUTPUTS])];

/// What can go wrong loading, training or saving the module; each names the file concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StaticGraphError {
    /// The module file does not exist.
    #[error("{}: no such file", path.display())]
    Missing { path: PathBuf },

    /// The module file exists but cannot be read.
    #[error("{}: cannot read it: {source}", path.display())]
    Unreadable { path: PathBuf, source: io::Error },

    /// libtorch cannot load the file as a TorchScript module.
    #[error("{}: not a TorchScript module: {reason}", path.display())]
    NotTorchScript { path: PathBuf, reason: String },

    /// The module's parameters are not the seed's Linear(20, 100).
    #[error(
        "{}: the module's parameters must be fc_weight [100, 20] and fc_bias [100] (trainable float32), found {found}", path.display()
    )]
    Parameters { path: PathBuf, found: String },

    /// A method is missing, or does not map a batch to what the seed's program computes.
    #[error("{}: the module's `{method}` method {problem}", path.display())]
    Method {
        path: PathBuf,
        method: &'static str,
        problem: String,
    },

    /// A training setting out of range.
    #[error("{parameter} must be at least 1, got 0")]
    Zero { parameter: &'static str },

    /// The scheduler refused its configuration or a step.
    #[error("scheduler: {0}")]
    Schedule(#[from] crate::Error),

    /// libtorch failed while training.
    #[error("{}: libtorch failed while training: {reason}", path.display())]
    Training { path: PathBuf, reason: String },

    /// The trained module could not be saved or loaded back.
    #[error("{}: {reason}", path.display())]
    Save { path: PathBuf, reason: String },

    /// The module loaded back from the saved file computes something else than the trained one.
    #[error(
        "{}: the saved module's output differs from the trained module's by up to {max_difference}", path.display()
    )]
    SavedDiffers { path: PathBuf, max_difference: f64 },

    /// The progress lines could not be written.
    #[error("cannot write the output: {0}")]
    Output(#[from] io::Error),
}

/// What libtorch says went wrong, in one line. Its messages carry a C++ backtrace, or for a
/// failure inside TorchScript a traceback of the script with the exception last.
fn libtorch_reason(error: &tch::TchError) -> String {
    let text = error.to_string();
    let text = text.strip_prefix("Internal torch error: ").unwrap_or(&text);
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("unknown libtorch error");
    let exception = lines.filter_map(exception_message).next_back();
    exception.unwrap_or(first).to_owned()
}

/// The message of a Python exception line, `RuntimeError: <message>`.
fn exception_message(line: &str) -> Option<&str> {
    let (kind, message) = line.split_once(": ")?;
    let is_exception = kind.ends_with("Error") && kind.chars().all(char::is_alphanumeric);
    is_exception.then_some(message)
}

/// The first sentence: libtorch follows a failed load with advice about corrupted checkpoints.
fn first_sentence(text: &str) -> &str {
    text.split_once(". ").map_or(text, |(sentence, _)| sentence)
}

fn shape_text(shape: &[i64]) -> String {
    let dims: Vec<String> = shape.iter().map(i64::to_string).collect();
    format!("[{}]", dims.join(", "))
}

/// The seed's module, loaded for training: its parameters live in a [`VarStore`].
#[derive(Debug)]
pub struct StaticGraph {
    path: PathBuf,
    vs: VarStore,
    module: TrainableCModule,
}

impl StaticGraph {
    /// Loads the module at `path` onto `device` and checks that it is the seed's program:
    /// parameters `fc_weight` `[100, 20]` and `fc_bias` `[100]`, a `forward` that maps an
    /// `[N, 4, 5]` batch to `[N, 100]`, and a `loss(x, y)` that gives a differentiable scalar.
    ///
    /// # Errors
    /// [`StaticGraphError::Missing`] or [`Unreadable`](StaticGraphError::Unreadable) for a
    /// file that is not there; [`NotTorchScript`](StaticGraphError::NotTorchScript) when
    /// libtorch cannot load it; [`Parameters`](StaticGraphError::Parameters) and
    /// [`Method`](StaticGraphError::Method) for a module that is not the seed's.
    pub fn load(path: impl AsRef<Path>, device: Device) -> Result<Self, StaticGraphError> {
        let path = path.as_ref().to_path_buf();
        if let Err(source) = std::fs::metadata(&path) {
            return Err(if source.kind() == io::ErrorKind::NotFound {
                StaticGraphError::Missing { path }
            } else {
                StaticGraphError::Unreadable { path, source }
            });
        }
        if path.is_dir() {
            let reason = "it is a folder".to_owned();
            return Err(StaticGraphError::NotTorchScript { path, reason });
        }
        let vs = VarStore::new(device);
        let module = match TrainableCModule::load(&path, vs.root()) {
            Ok(module) => module,
            Err(e) => {
                let reason = first_sentence(&libtorch_reason(&e)).to_owned();
                return Err(StaticGraphError::NotTorchScript { path, reason });
            }
        };
        let graph = StaticGraph { path, vs, module };
        graph.check_parameters()?;
        graph.check_methods()?;
        Ok(graph)
    }

    fn check_parameters(&self) -> Result<(), StaticGraphError> {
        let mut variables: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        variables.sort_by(|a, b| a.0.cmp(&b.0));
        let expected = PARAMETERS.iter().all(|(name, shape)| {
            variables.iter().any(|(n, t)| {
                n == name && t.size() == *shape && t.kind() == Kind::Float && t.requires_grad()
            })
        });
        if expected && variables.len() == PARAMETERS.len() {
            return Ok(());
        }
        let mut found = String::new();
        for (i, (name, tensor)) in variables.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            let _ = write!(found, "{sep}{name} {}", shape_text(&tensor.size()));
            if tensor.kind() != Kind::Float {
                let _ = write!(found, " {:?}", tensor.kind());
            }
            if !tensor.requires_grad() {
                let _ = write!(found, " (frozen)");
            }
        }
        if found.is_empty() {
            found.push_str("none");
        }
        Err(StaticGraphError::Parameters {
            path: self.path.clone(),
            found,
        })
    }

    /// Runs both methods once on a zero batch, so that a module that cannot train fails here,
    /// with a message, rather than in the middle of the loop.
    fn check_methods(&self) -> Result<(), StaticGraphError> {
        let input = shape_text(&BATCH_SHAPE);
        let method_error = |method, problem: String| StaticGraphError::Method {
            path: self.path.clone(),
            method,
            problem,
        };
        let call_error = |method: &'static str, e: &tch::TchError| {
            let reason = libtorch_reason(e);
            let problem = if reason == format!("Method '{method}' is not defined.") {
                "is missing (a scripted module keeps methods other than forward only when they are marked @torch.jit.export)".to_owned()
            } else {
                format!("fails on {input} batches: {reason}")
            };
            method_error(method, problem)
        };
        let x = Tensor::zeros(BATCH_SHAPE, (Kind::Float, self.vs.device()));
        let z = tch::no_grad(|| self.module.forward_ts(&[&x]))
            .map_err(|e| call_error("forward", &e))?;
        let expected = [BATCH_SHAPE[0], OUTPUTS];
        if z.size() != expected {
            let problem = format!(
                "maps {input} batches to {}, not {}",
                shape_text(&z.size()),
                shape_text(&expected)
            );
            return Err(method_error("forward", problem));
        }
        let loss = self
            .module
            .method_ts("loss", &[&x, &x])
            .map_err(|e| call_error("loss", &e))?;
        if !loss.size().is_empty() || loss.kind() != Kind::Float || !loss.requires_grad() {
            let problem = format!(
                "must return a float32 scalar that depends on the parameters, got {:?} {}{}",
                loss.kind(),
                shape_text(&loss.size()),
                if loss.requires_grad() {
                    ""
                } else {
                    " without gradient"
                }
            );
            return Err(method_error("loss", problem));
        }
        Ok(())
    }

    /// The file the module was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The module's parameters, `fc_weight` and `fc_bias`.
    pub fn var_store(&self) -> &VarStore {
        &self.vs
    }

    /// `forward(x)`: an [N, 4, 5] batch to [N, 100].
    ///
    /// # Errors
    /// [`StaticGraphError::Training`] when libtorch refuses the input.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, StaticGraphError> {
        self.module
            .forward_ts(&[x])
            .map_err(|e| self.training_error(&e))
    }

    /// `loss(x, y)`: the seed's `mean(fc(x))`, which ignores `y`.
    ///
    /// # Errors
    /// [`StaticGraphError::Training`] when libtorch refuses the inputs.
    pub fn loss(&self, x: &Tensor, y: &Tensor) -> Result<Tensor, StaticGraphError> {
        self.module
            .method_ts("loss", &[x, y])
            .map_err(|e| self.training_error(&e))
    }

    /// Writes the module, with its current parameters, to `path`, loads it back with
    /// [`CModule`] and checks that it computes what this module computes, to the bit, on a
    /// fixed batch.
    ///
    /// # Errors
    /// [`StaticGraphError::Save`] when the file cannot be written or loaded back;
    /// [`StaticGraphError::SavedDiffers`] when the reloaded module's output differs.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), StaticGraphError> {
        let path = path.as_ref().to_path_buf();
        let save_error = |what: &str, e: &tch::TchError| StaticGraphError::Save {
            path: path.clone(),
            reason: format!("{what}: {}", libtorch_reason(e)),
        };
        self.module
            .save(&path)
            .map_err(|e| save_error("cannot save the trained module", &e))?;
        let reloaded = CModule::load_on_device(&path, self.vs.device())
            .map_err(|e| save_error("cannot load the saved module back", &e))?;
        let x = fixed_batch(self.vs.device());
        let (trained, saved) = tch::no_grad(|| {
            let trained = self.module.forward_ts(&[&x]);
            let saved = reloaded.forward_ts(&[&x]);
            (trained, saved)
        });
        let trained = trained.map_err(|e| save_error("the trained module fails", &e))?;
        let saved = saved.map_err(|e| save_error("the saved module fails", &e))?;
        let same = trained.size() == saved.size()
            && trained
                .f_equal(&saved)
                .map_err(|e| save_error("cannot compare outputs", &e))?;
        if same {
            return Ok(());
        }
        let max_difference = if trained.size() == saved.size() {
            (&trained - &saved)
                .abs()
                .max()
                .f_double_value(&[])
                .unwrap_or(f64::NAN)
        } else {
            f64::INFINITY
        };
        Err(StaticGraphError::SavedDiffers {
            path,
            max_difference,
        })
    }

    fn training_error(&self, error: &tch::TchError) -> StaticGraphError {
        StaticGraphError::Training {
            path: self.path.clone(),
            reason: libtorch_reason(error),
        }
    }
}

/// Refuses, before training, a save path that cannot be written.
fn check_save_path(path: &Path) -> Result<(), StaticGraphError> {
    let reason = if path.is_dir() {
        "cannot save the trained module there: it is a folder"
    } else if path
        .parent()
        .is_some_and(|p| !p.as_os_str().is_empty() && !p.is_dir())
    {
        "cannot save the trained module there: its folder does not exist"
    } else {
        return Ok(());
    };
    Err(StaticGraphError::Save {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    })
}

/// The batch [`StaticGraph::save`] compares outputs on: 60 evenly spaced values in [-1, 1].
pub fn fixed_batch(device: Device) -> Tensor {
    let count = BATCH_SHAPE.iter().product::<i64>();
    Tensor::linspace(-1.0, 1.0, count, (Kind::Float, device)).reshape(BATCH_SHAPE)
}

/// The seed's random feed, `np.random.randn(3, 4, 5)` for `x` then for `y`, from a seeded
/// generator of this crate's own: the same seed gives the same numbers on every device.
#[derive(Debug)]
pub struct Batches {
    rng: StdRng,
    device: Device,
}

impl Batches {
    /// Batches drawn from `seed`, placed on `device`.
    pub fn new(seed: u64, device: Device) -> Self {
        Batches {
            rng: StdRng::seed_from_u64(seed),
            device,
        }
    }

    /// The next `(x, y)`, each [3, 4, 5] float32 standard normal.
    pub fn next_batch(&mut self) -> (Tensor, Tensor) {
        let x = self.standard_normal();
        let y = self.standard_normal();
        (x, y)
    }

    /// A [3, 4, 5] tensor of standard normal draws.
    fn standard_normal(&mut self) -> Tensor {
        let count = BATCH_SHAPE.iter().product::<i64>() as usize;
        let values: Vec<f32> = (0..count)
            .map(|_| standard_normal(&mut self.rng) as f32)
            .collect();
        Tensor::from_slice(&values)
            .reshape(BATCH_SHAPE)
            .to_device(self.device)
    }
}

/// How to train the seed's module: what the example's flags set.
#[derive(Clone, Debug)]
pub struct StaticGraphConfig {
    module: PathBuf,
    device: Device,
    epochs: usize,
    batches: usize,
    seed: u64,
    verbose: bool,
    save: Option<PathBuf>,
}

impl StaticGraphConfig {
    /// Trains the module at `module` as the seed does: on `Device::cuda_if_available()`, 5
    /// epochs of 20 batches, seed 0, with the scheduler's verbose lines, saving nothing.
    pub fn new(module: impl Into<PathBuf>) -> Self {
        StaticGraphConfig {
            module: module.into(),
            device: Device::cuda_if_available(),
            epochs: 5,
            batches: 20,
            seed: 0,
            verbose: true,
            save: None,
        }
    }

    /// Where the module and the batches live.
    pub fn with_device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// Epochs, each of [`with_batches`](Self::with_batches) steps.
    pub fn with_epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }

    /// Batches (optimizer steps) per epoch.
    pub fn with_batches(mut self, batches: usize) -> Self {
        self.batches = batches;
        self
    }

    /// The seed of the random batches.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Whether to write the scheduler's line (`Epoch 3: CyclicLR set learning rate to 0.6.`)
    /// at each step, as Paddle's `verbose=True` prints it.
    pub fn with_verbose(mut self, verbose: bool) -> Self {
        self.verbose = verbose;
        self
    }

    /// Where to save the trained module (then loaded back and checked).
    pub fn with_save(mut self, path: impl Into<PathBuf>) -> Self {
        self.save = Some(path.into());
        self
    }

    /// The seed's schedule: base 0.5, max 1.0, 15 steps up, 5 down.
    pub fn schedule() -> CyclicLrConfig {
        CyclicLrConfig::new(0.5, 1.0, 15).with_step_size_down(5)
    }
}

/// The training loop, one batch at a time: the module, SGD over its parameters, the seed's
/// scheduler stepped after each optimizer step, and the random feed.
#[derive(Debug)]
pub struct Training {
    graph: StaticGraph,
    opt: nn::Optimizer,
    scheduler: CyclicLr,
    batches: Batches,
}

impl Training {
    /// Loads the module and builds the optimizer and the scheduler.
    ///
    /// # Errors
    /// Those of [`StaticGraph::load`]; [`StaticGraphError::Training`] when libtorch cannot
    /// build the optimizer.
    pub fn new(config: &StaticGraphConfig) -> Result<Self, StaticGraphError> {
        let graph = StaticGraph::load(&config.module, config.device)?;
        let scheduler = StaticGraphConfig::schedule().init()?;
        let opt = nn::Sgd::default()
            .build(&graph.vs, scheduler.last_lr())
            .map_err(|e| graph.training_error(&e))?;
        Ok(Training {
            graph,
            opt,
            scheduler,
            batches: Batches::new(config.seed, config.device),
        })
    }

    /// One batch: draws `x` and `y`, computes the loss, takes an SGD step at the scheduler's
    /// current rate, then steps the scheduler. Returns the batch's loss.
    ///
    /// # Errors
    /// [`StaticGraphError::Training`] when libtorch fails; [`StaticGraphError::Schedule`]
    /// when the scheduler cannot step.
    pub fn step(&mut self) -> Result<f64, StaticGraphError> {
        let (x, y) = self.batches.next_batch();
        let loss = self.graph.loss(&x, &y)?;
        self.opt.zero_grad();
        loss.f_backward()
            .map_err(|e| self.graph.training_error(&e))?;
        self.opt.step();
        self.scheduler.step_with(&mut self.opt)?;
        loss.f_double_value(&[])
            .map_err(|e| self.graph.training_error(&e))
    }

    /// The module being trained.
    pub fn graph(&self) -> &StaticGraph {
        &self.graph
    }

    /// The scheduler: its `last_lr` is the rate of the next step.
    pub fn scheduler(&self) -> &CyclicLr {
        &self.scheduler
    }
}

/// Trains as the seed does and writes its lines to `out`: the scheduler's verbose line after
/// each step (when asked), `epoch <e> loss=<mean> lr=<lr>` after each epoch, a line for a
/// checked save, and the final summary, which it also returns.
///
/// # Errors
/// Those of [`Training::new`] and [`Training::step`]; [`StaticGraphError::Zero`] for zero
/// epochs or batches; those of [`StaticGraph::save`];
/// [`StaticGraphError::Output`] when `out` refuses a line.
pub fn run(config: &StaticGraphConfig, out: &mut impl Write) -> Result<Summary, StaticGraphError> {
    if config.epochs == 0 {
        return Err(StaticGraphError::Zero {
            parameter: "epochs",
        });
    }
    if config.batches == 0 {
        return Err(StaticGraphError::Zero {
            parameter: "batches",
        });
    }
    if let Some(path) = &config.save {
        check_save_path(path)?;
    }
    let mut training = Training::new(config)?;
    if config.verbose {
        writeln!(out, "{}", training.scheduler.verbose_line())?;
    }
    let mut loss = f64::NAN;
    for epoch in 0..config.epochs {
        let mut total = 0.0;
        for _ in 0..config.batches {
            loss = training.step()?;
            total += loss;
            if config.verbose {
                writeln!(out, "{}", training.scheduler.verbose_line())?;
            }
        }
        let mean = total / config.batches as f64;
        writeln!(
            out,
            "{}",
            epoch_line(epoch, mean, training.scheduler.last_lr())
        )?;
    }
    if let Some(path) = &config.save {
        training.graph.save(path)?;
        writeln!(
            out,
            "saved {}: loaded back, its output equals the trained module's",
            path.display()
        )?;
    }
    let summary = Summary::of(&training.scheduler, loss, &training.graph.vs);
    writeln!(out, "{summary}")?;
    Ok(summary)
}
