//! Cyclical learning rates for [tch](https://docs.rs/tch): PaddlePaddle's
//! `paddle.optimizer.lr.CyclicLR` in Rust, equal to Paddle's and PyTorch's rates to the bit,
//! with PyTorch's per-group bounds and momentum cycling.
//!
//! The learning rate cycles between two bounds (Smith, "Cyclical Learning Rates for Training
//! Neural Networks", 2017): it rises for `step_size_up` steps from `base_learning_rate` to
//! `max_learning_rate`, falls back for `step_size_down` steps, and starts again; the
//! amplitude can shrink each cycle ([`Mode::Triangular2`]), decay each step
//! ([`Mode::ExpRange`]) or follow a function of your own.
//!
//! # A schedule
//!
//! The seed of Paddle's documentation: base 0.5, max 1.0, 15 steps up and 5 down.
//!
//! ```
//! use cyclic_lr::CyclicLrConfig;
//!
//! let mut scheduler = CyclicLrConfig::new(0.5, 1.0, 15).with_step_size_down(5).init()?;
//! assert_eq!(scheduler.last_lr(), 0.5); // construction takes the first step, to epoch 0
//! for _ in 0..15 {
//!     scheduler.step()?;
//! }
//! assert_eq!((scheduler.last_epoch(), scheduler.last_lr()), (15, 1.0)); // the peak
//! scheduler.step_to(20)?; // Paddle's step(epoch): back at the base
//! assert_eq!(scheduler.last_lr(), 0.5);
//! # Ok::<(), cyclic_lr::Error>(())
//! ```
//!
//! # Driving a tch optimizer
//!
//! Build the optimizer with the scheduler's first rate, and after each `opt.step()` call
//! [`CyclicLr::step_with`], which advances the schedule and sets the next rate.
//!
//! ```no_run
//! use tch::nn::{self, Module, OptimizerConfig};
//! use tch::{Device, Kind, Tensor};
//! use cyclic_lr::CyclicLrConfig;
//!
//! let vs = nn::VarStore::new(Device::cuda_if_available());
//! let linear = nn::linear(vs.root(), 10, 10, Default::default());
//! let mut scheduler = CyclicLrConfig::new(0.5, 1.0, 15).with_step_size_down(5).init()?;
//! let mut opt = nn::Sgd::default().build(&vs, scheduler.last_lr())?;
//! for _ in 0..100 {
//!     let x = Tensor::rand([10, 10], (Kind::Float, vs.device()));
//!     let loss = linear.forward(&x).mean(Kind::Float);
//!     opt.backward_step(&loss);
//!     scheduler.step_with(&mut opt)?;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! For one rate per parameter group (tch's `vs.root().set_group(n)`), or momentum cycling,
//! wrap the optimizer in a [`TchOptimizer`], which knows its groups and kind.
//!
//! # Choosing the bounds
//!
//! Run the LR range test first ([`range_test`]): it sweeps the rate up while training, stops
//! when the loss diverges, puts the weights back, suggests both bounds and builds the
//! [`CyclicLrConfig`].
//!
//! # Saving and resuming
//!
//! [`CyclicLr::state_dict`] is Paddle's state (`last_epoch`, `last_lr`) plus the configuration
//! it belongs to, as serde JSON; loading checks the configuration and refuses a state that is
//! not this scheduler's.
//!
//! ```
//! use cyclic_lr::{CyclicLrConfig, State};
//!
//! let config = CyclicLrConfig::new(0.5, 1.0, 15).with_step_size_down(5);
//! let mut trained = config.clone().init()?;
//! trained.step_to(37)?;
//! let json = trained.state_dict().to_json();
//!
//! let mut resumed = config.init()?;
//! resumed.set_state_dict(&State::from_json(json.as_bytes())?)?;
//! assert_eq!(resumed.step()?, trained.step()?);
//! # Ok::<(), cyclic_lr::Error>(())
//! ```
//!
//! The schedule itself is pure maths ([`Schedule`], [`Phase`]), free of libtorch.

mod cyclic;
mod error;
mod pyfmt;
pub mod range_test;
mod schedule;
mod state;
mod target;
pub mod train;

pub use cyclic::{CyclicLr, CyclicLrConfig, PerGroup};
pub use error::Error;
pub use pyfmt::PyFloat;
pub use schedule::{MAX_EPOCH, Mode, Phase, Scale, ScaleFn, ScaleMode, Schedule};
pub use state::{STATE_VERSION, SavedConfig, State};
pub use target::{
    KnownOptimizer, LearningRateTarget, MomentumSupport, OptimizerKind, TchOptimizer,
};
