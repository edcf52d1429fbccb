//! The seed's dynamic-graph example: a Linear(10, 10) trained with SGD under CyclicLR, with
//! what a real training loop needs around it (seeded data, per-epoch results, checkpoints
//! and exact resume).
//!
//! Paddle's code, which [`Config::default`] reproduces:
//!
//! ```python
//! linear = paddle.nn.Linear(10, 10)
//! scheduler = paddle.optimizer.lr.CyclicLR(base_learning_rate=0.5,
//!     max_learning_rate=1.0, step_size_up=15, step_size_down=5, verbose=True)
//! sgd = paddle.optimizer.SGD(learning_rate=scheduler, parameters=linear.parameters())
//! for epoch in range(5):
//!     for batch_id in range(20):
//!         x = paddle.uniform([10, 10])
//!         out = linear(x)
//!         loss = paddle.mean(out)
//!         scheduler.step()        # You should update learning rate each step
//! ```
//!
//! Each batch here also runs the backward pass and the optimizer step, then the scheduler's.
//!
//! # Randomness
//!
//! Nothing comes from libtorch's global generator (shared by every thread of a process):
//! the initial weights and every batch come from `rand`'s `StdRng` (ChaCha12), keyed by the
//! seed and by what is drawn. Batch `s` (counting from 0 over the whole run) is drawn from the
//! generator keyed by `(seed, s)`, uniform in [-1, 1) like `paddle.uniform`; so the data
//! generator's position is the step count, and a resumed run draws exactly the batches the
//! uninterrupted run would have. The initial weights follow PyTorch's `nn.Linear`:
//! uniform in ±1/√in_features. The same seed gives the same data and the same initial
//! weights on every device; on the CPU it gives the same numbers to the last digit.

use std::io::{self, Write};
use std::path::PathBuf;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tch::nn::{self, Module, OptimizerConfig, VarStore};
use tch::{Device, Kind, TchError, Tensor};

use crate::train::checkpoint::{self, CheckpointError, Progress};
use crate::train::{Summary, epoch_line};
use crate::{CyclicLr, CyclicLrConfig};

/// The seed used when none is given.
pub const DEFAULT_SEED: u64 = 0;

/// Rows of each batch (the seed's `paddle.uniform([10, 10])`).
pub const BATCH_SIZE: i64 = 10;

/// A training run. `Config::default()` is the seed's: 5 epochs of 20 batches, verbose, on
/// `Device::cuda_if_available()`, no checkpoints.
#[derive(Clone, Debug)]
pub struct Config {
    pub epochs: usize,
    /// Batches per epoch.
    pub batches: usize,
    /// [`DEFAULT_SEED`] when `None`; when resuming, the checkpoint's (a different one is an
    /// error).
    pub seed: Option<u64>,
    pub device: Device,
    /// Paddle's verbose line after construction and after each step.
    pub verbose: bool,
    /// A folder to write a checkpoint to at the end of every epoch.
    pub checkpoint: Option<PathBuf>,
    /// Continue from the checkpoint in `checkpoint` up to `epochs`.
    pub resume: bool,
    /// The schedule; its own `verbose` is ignored (the run writes the lines to its output).
    pub scheduler: CyclicLrConfig,
    /// The Linear's input and output size.
    pub features: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            epochs: 5,
            batches: 20,
            seed: None,
            device: Device::cuda_if_available(),
            verbose: true,
            checkpoint: None,
            resume: false,
            scheduler: CyclicLrConfig::new(0.5, 1.0, 15).with_step_size_down(5),
            features: 10,
        }
    }
}

/// One epoch's result, as its line shows it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochResult {
    /// Counted from 0, like the seed's `for epoch in range(5)`.
    pub epoch: usize,
    pub mean_loss: f64,
    /// The learning rate after the epoch: the next step's.
    pub lr: f64,
}

/// What a run did: the epochs it trained (not those before a resume) and its final line.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub epochs: Vec<EpochResult>,
    pub summary: Summary,
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// A checkpoint that cannot be resumed from, or written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),

    /// The schedule's configuration was refused.
    #[error(transparent)]
    Scheduler(#[from] crate::Error),

    /// libtorch refused an operation.
    #[error("libtorch: {0}")]
    Torch(#[from] TchError),

    /// The output could not be written (a closed pipe, say).
    #[error("cannot write the output: {0}")]
    Output(#[from] io::Error),

    /// `resume` without a `checkpoint` folder.
    #[error("resuming needs a checkpoint folder")]
    ResumeWithoutCheckpoint,

    /// A count that must be positive (epochs, batches, features) was not.
    #[error("{parameter} must be at least 1")]
    Zero { parameter: &'static str },
}

/// Trains as `config` says, writing the verbose lines (unless quiet), a line per epoch and the
/// final line to `out`.
///
/// When resuming, the checkpoint is checked in full before anything is trained or written; a
/// checkpoint that already has `config.epochs` epochs done gives its final line without
/// training.
///
/// ```
/// use cyclic_lr::train::dynamic::{self, Config};
///
/// let config = Config { epochs: 1, verbose: false, ..Config::default() };
/// let report = dynamic::run(&config, &mut std::io::stdout())?;
/// assert_eq!(report.summary.step, 20);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`TrainError::Checkpoint`] for a checkpoint that is missing, damaged, or saved by a run set
/// up differently (another model shape, schedule, batches per epoch or seed), or that has more
/// epochs done than `config.epochs`; [`TrainError::ResumeWithoutCheckpoint`];
/// [`TrainError::Zero`] for no epochs, batches or features; [`TrainError::Scheduler`] for a schedule
/// refused; [`TrainError::Output`] when `out` fails.
pub fn run(config: &Config, out: &mut impl Write) -> Result<Report, TrainError> {
    if config.batches == 0 {
        return Err(TrainError::Zero {
            parameter: "batches",
        });
    }
    if config.epochs == 0 {
        return Err(TrainError::Zero {
            parameter: "epochs",
        });
    }
    if config.features < 1 {
        return Err(TrainError::Zero {
            parameter: "features",
        });
    }
    let vs = VarStore::new(config.device);
    let linear = nn::linear(
        vs.root(),
        config.features,
        config.features,
        Default::default(),
    );
    let mut scheduler = config.scheduler.clone().with_verbose(false).init()?;

    let start = if config.resume {
        let dir = config
            .checkpoint
            .as_deref()
            .ok_or(TrainError::ResumeWithoutCheckpoint)?;
        resume(config, &vs, &mut scheduler, &checkpoint::load(dir, &vs)?)?
    } else {
        if let Some(dir) = &config.checkpoint {
            checkpoint::create_dir(dir)?;
        }
        let seed = config.seed.unwrap_or(DEFAULT_SEED);
        init_weights(&vs, config.features, seed)?;
        if config.verbose {
            writeln!(out, "{}", scheduler.verbose_line())?;
        }
        Start {
            epoch: 0,
            seed,
            loss: f64::NAN,
        }
    };

    let mut opt = nn::Sgd::default().build(&vs, scheduler.last_lr())?;
    let mut batch = vec![0.0f32; (BATCH_SIZE * config.features) as usize];
    let mut epochs = Vec::with_capacity(config.epochs.saturating_sub(start.epoch));
    let mut step = (start.epoch * config.batches) as u64;
    let mut last_loss = start.loss;
    for epoch in start.epoch..config.epochs {
        let mut loss_sum = Tensor::zeros([], (Kind::Double, config.device));
        let mut loss = Tensor::zeros([], (Kind::Float, config.device));
        for _ in 0..config.batches {
            draw_batch(&mut batch, start.seed, step);
            // `f_reshape`, not `f_view`: tch's `view` boxes the shape on every call.
            let x = Tensor::f_from_slice(&batch)?
                .f_reshape([BATCH_SIZE, config.features])?
                .f_to_device(config.device)?;
            loss = linear.forward(&x).f_mean(Kind::Float)?;
            opt.backward_step(&loss);
            scheduler.step_with(&mut opt)?;
            step += 1;
            // On the device and without autograd: no host sync and no graph kept per step.
            let _ = tch::no_grad(|| loss_sum.f_add_(&loss))?;
            if config.verbose {
                writeln!(out, "{}", scheduler.verbose_line())?;
            }
        }
        let mean_loss = loss_sum.f_double_value(&[])? / config.batches as f64;
        last_loss = loss.f_double_value(&[])?;
        writeln!(out, "{}", epoch_line(epoch, mean_loss, scheduler.last_lr()))?;
        epochs.push(EpochResult {
            epoch,
            mean_loss,
            lr: scheduler.last_lr(),
        });
        if let Some(dir) = &config.checkpoint {
            let progress = Progress {
                epoch: epoch + 1,
                step: step as i64,
                batches: config.batches,
                seed: start.seed,
                loss: last_loss,
                scheduler: scheduler.state_dict(),
            };
            checkpoint::save(dir, &vs, &progress)?;
        }
    }

    let summary = Summary::of(&scheduler, last_loss, &vs);
    writeln!(out, "{summary}")?;
    Ok(Report { epochs, summary })
}

/// Where a run starts: its first epoch, its seed, and the loss to report if it trains none.
struct Start {
    epoch: usize,
    seed: u64,
    loss: f64,
}

/// Checks `loaded` against the run, then applies it to the weights and the scheduler.
fn resume(
    config: &Config,
    vs: &VarStore,
    scheduler: &mut CyclicLr,
    loaded: &checkpoint::Checkpoint,
) -> Result<Start, TrainError> {
    let path = || loaded.manifest_path.clone();
    let progress = &loaded.progress;
    let mismatch = |what, saved: String, current: String| CheckpointError::RunMismatch {
        path: path(),
        what,
        saved,
        current,
    };
    if progress.batches != config.batches {
        return Err(mismatch(
            "batches per epoch",
            progress.batches.to_string(),
            config.batches.to_string(),
        )
        .into());
    }
    if let Some(seed) = config.seed.filter(|&seed| seed != progress.seed) {
        return Err(mismatch("seed", progress.seed.to_string(), seed.to_string()).into());
    }
    if progress.epoch > config.epochs {
        return Err(CheckpointError::Inconsistent {
            path: path(),
            reason: format!(
                "{} epochs are done, more than the {} asked for",
                progress.epoch, config.epochs
            ),
        }
        .into());
    }
    // The scheduler may start past epoch 0 (`with_last_epoch`): it is `step` beyond its start.
    let steps = progress
        .epoch
        .checked_mul(config.batches)
        .and_then(|steps| i64::try_from(steps).ok());
    let scheduler_epoch = progress.step.checked_add(scheduler.last_epoch());
    if steps != Some(progress.step) || scheduler_epoch != Some(progress.scheduler.last_epoch) {
        return Err(CheckpointError::Inconsistent {
            path: path(),
            reason: format!(
                "step {} and scheduler epoch {} do not follow from {} epochs of {} batches",
                progress.step, progress.scheduler.last_epoch, progress.epoch, progress.batches
            ),
        }
        .into());
    }
    let mut resumed = scheduler.clone();
    resumed
        .set_state_dict(&progress.scheduler)
        .map_err(|source| CheckpointError::Scheduler {
            path: path(),
            source,
        })?;
    loaded.restore(vs)?;
    *scheduler = resumed;
    Ok(Start {
        epoch: progress.epoch,
        seed: progress.seed,
        loss: progress.loss,
    })
}

/// The generator for one purpose (`b'w'` weights, `b'x'` batches) and index, from the seed.
fn generator(seed: u64, purpose: u8, index: u64) -> StdRng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&index.to_le_bytes());
    key[16] = purpose;
    StdRng::from_seed(key)
}

/// The batch of global step `step`: uniform in [-1, 1), like `paddle.uniform`'s default.
fn draw_batch(batch: &mut [f32], seed: u64, step: u64) {
    let mut rng = generator(seed, b'x', step);
    batch.fill_with(|| rng.random_range(-1.0..1.0));
}

/// PyTorch's `nn.Linear` initialization, weight and bias uniform in ±1/√in_features, from the
/// run's own generator rather than libtorch's global one.
fn init_weights(vs: &VarStore, in_features: i64, seed: u64) -> Result<(), TchError> {
    let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    let bound = 1.0 / (in_features as f32).sqrt();
    let mut rng = generator(seed, b'w', 0);
    tch::no_grad(|| {
        for (_, variable) in &mut variables {
            let values: Vec<f32> = (0..variable.numel())
                .map(|_| rng.random_range(-bound..bound))
                .collect();
            let values = Tensor::f_from_slice(&values)?
                .f_reshape(variable.size())?
                .f_to_device(variable.device())?;
            variable.f_copy_(&values)?;
        }
        Ok(())
    })
}
