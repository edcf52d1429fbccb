//! The LR range test of the CLR paper (Smith, "Cyclical Learning Rates for Training Neural
//! Networks", 2017, section 3.3): how to pick [`CyclicLr`](crate::CyclicLr)'s two bounds.
//!
//! Train for a few hundred steps while the learning rate rises from a low to a high value, and
//! watch the loss: it barely moves at first, then falls, then stops falling, turns ragged and
//! blows up. The base bound goes where it falls, the max bound below where it stops falling.
//! fastai's `lr_find` runs the same test with an exponential sweep, a smoothed loss, an early
//! stop once the loss passes four times its best, and the model restored afterwards; so does
//! this one, on any [`LearningRateTarget`] and the [`VarStore`] it trains.
//!
//! ```no_run
//! use tch::nn::{self, Module, OptimizerConfig};
//! use tch::{Device, Kind, Tensor};
//! use cyclic_lr::range_test::RangeTestConfig;
//!
//! let vs = nn::VarStore::new(Device::cuda_if_available());
//! let model = nn::linear(vs.root(), 10, 1, Default::default());
//! let x = Tensor::randn([256, 10], (Kind::Float, vs.device()));
//! let y = Tensor::randn([256, 1], (Kind::Float, vs.device()));
//! let mut opt = nn::Sgd::default().build(&vs, 0.01)?;
//!
//! let test = RangeTestConfig::new(1e-5, 10.0, 100).init()?;
//! let result = test.run(&vs, &mut opt, 0.01, |opt, _lr| {
//!     let loss = model.forward(&x).mse_loss(&y, tch::Reduction::Mean);
//!     opt.backward_step(&loss);
//!     f64::try_from(&loss)
//! })?;
//! // The weights are back as they were, and the optimizer's rate is 0.01 again.
//! let mut scheduler = result.cyclic_lr_config(500)?.init()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::convert::Infallible;
use std::io;

use tch::Tensor;
use tch::nn::VarStore;

use crate::cyclic::CyclicLrConfig;
use crate::pyfmt::PyFloat;
use crate::target::LearningRateTarget;

/// How the learning rate rises from the start rate to the end rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Sweep {
    /// Equal steps, as in Smith's paper: `start + (end - start) * i / (steps - 1)`.
    Linear,
    /// Equal ratios, as fastai's `lr_find`: `start * (end / start)^(i / (steps - 1))`. Spends as
    /// many steps on each decade, which suits a range spanning several.
    #[default]
    Exponential,
}

/// What went wrong in a range test: a refused configuration, the training step's own error
/// (`E`), or libtorch failing to save or restore the weights.
///
/// [`RangeTestConfig::init`] and [`RangeTestResult::cyclic_lr_config`] return
/// `RangeTestError<Infallible>`, which has no [`Step`](Self::Step).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RangeTestError<E = Infallible> {
    /// A number that must be finite was NaN or infinite.
    #[error("{parameter} must be a finite number, got {}", PyFloat(*.value))]
    NotFinite { parameter: &'static str, value: f64 },

    /// A learning rate below zero, or zero where an exponential sweep starts.
    #[error("{parameter} must be {expected}, got {}", PyFloat(*.value))]
    TooLow {
        parameter: &'static str,
        value: f64,
        expected: &'static str,
    },

    /// An end rate that is not above the start rate.
    #[error("end_learning_rate must be above start_learning_rate ({}), got {}", PyFloat(*.start), PyFloat(*.end))]
    EndNotAboveStart { start: f64, end: f64 },

    /// Fewer than two steps: a sweep needs a start and an end.
    #[error("steps must be at least 2, got {steps}")]
    TooFewSteps { steps: usize },

    /// A smoothing factor outside [0, 1).
    #[error("smoothing must be in [0, 1), got {}", PyFloat(*.value))]
    Smoothing { value: f64 },

    /// A divergence factor that is not above 1.
    #[error("divergence_factor must be above 1, got {}", PyFloat(*.value))]
    DivergenceFactor { value: f64 },

    /// The training step returned an error; the weights and the rate were restored first.
    #[error("the training step {step} at learning rate {} failed: {error}", PyFloat(*.learning_rate))]
    Step {
        step: usize,
        learning_rate: f64,
        error: E,
    },

    /// libtorch could not save or restore the weights.
    #[error("libtorch: {0}")]
    Torch(String),

    /// The loss never fell below its first value, so there is no bound to suggest.
    #[error(
        "the smoothed loss never fell below its first value: start the sweep lower, or check the training step"
    )]
    NoSuggestion,
}

impl<E> From<tch::TchError> for RangeTestError<E> {
    fn from(error: tch::TchError) -> Self {
        RangeTestError::Torch(error.to_string())
    }
}

impl RangeTestError<Infallible> {
    /// The same error in a range test whose training step fails with `E`.
    fn widen<E>(self) -> RangeTestError<E> {
        match self {
            RangeTestError::NotFinite { parameter, value } => {
                RangeTestError::NotFinite { parameter, value }
            }
            RangeTestError::TooLow {
                parameter,
                value,
                expected,
            } => RangeTestError::TooLow {
                parameter,
                value,
                expected,
            },
            RangeTestError::EndNotAboveStart { start, end } => {
                RangeTestError::EndNotAboveStart { start, end }
            }
            RangeTestError::TooFewSteps { steps } => RangeTestError::TooFewSteps { steps },
            RangeTestError::Smoothing { value } => RangeTestError::Smoothing { value },
            RangeTestError::DivergenceFactor { value } => {
                RangeTestError::DivergenceFactor { value }
            }
            RangeTestError::Step { error, .. } => match error {},
            RangeTestError::Torch(message) => RangeTestError::Torch(message),
            RangeTestError::NoSuggestion => RangeTestError::NoSuggestion,
        }
    }
}

/// The configuration of an LR range test.
///
/// ```
/// use cyclic_lr::range_test::{RangeTestConfig, Sweep};
///
/// let test = RangeTestConfig::new(0.001, 0.1, 5).with_sweep(Sweep::Exponential).init()?;
/// let rates: Vec<f64> = (0..test.steps()).map(|i| test.learning_rate(i)).collect();
/// assert_eq!(rates.first(), Some(&0.001));
/// assert_eq!(rates.last(), Some(&0.1));
/// assert!((rates[2] - 0.01).abs() < 1e-15);
/// # Ok::<(), cyclic_lr::range_test::RangeTestError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RangeTestConfig {
    start_learning_rate: f64,
    end_learning_rate: f64,
    steps: usize,
    sweep: Sweep,
    smoothing: f64,
    divergence_factor: f64,
}

impl RangeTestConfig {
    /// A sweep from `start_learning_rate` to `end_learning_rate` in `steps` training steps,
    /// both ends included. The rest takes fastai's defaults: exponential sweep, smoothing
    /// 0.98, stop when the smoothed loss passes 4 times its best.
    pub fn new(start_learning_rate: f64, end_learning_rate: f64, steps: usize) -> Self {
        RangeTestConfig {
            start_learning_rate,
            end_learning_rate,
            steps,
            sweep: Sweep::Exponential,
            smoothing: 0.98,
            divergence_factor: 4.0,
        }
    }

    /// Linear (Smith's) or exponential (fastai's, the default) sweep.
    pub fn with_sweep(mut self, sweep: Sweep) -> Self {
        self.sweep = sweep;
        self
    }

    /// The factor β of the exponential moving average of the loss (default 0.98; 0 turns the
    /// smoothing off). See [`RangeTestPoint::smoothed_loss`].
    pub fn with_smoothing(mut self, smoothing: f64) -> Self {
        self.smoothing = smoothing;
        self
    }

    /// The test stops once the smoothed loss exceeds this factor times its best (default 4);
    /// `f64::INFINITY` stops only on a non-finite loss.
    pub fn with_divergence_factor(mut self, divergence_factor: f64) -> Self {
        self.divergence_factor = divergence_factor;
        self
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// A [`RangeTestError`] naming the first value refused: a non-finite rate or smoothing, a
    /// start rate below 0 (at or below 0 for an exponential sweep), an end rate not above the
    /// start rate, fewer than 2 steps, a smoothing outside [0, 1), a divergence factor that is
    /// NaN or not above 1.
    pub fn init(self) -> Result<RangeTest, RangeTestError> {
        for (parameter, value) in [
            ("start_learning_rate", self.start_learning_rate),
            ("end_learning_rate", self.end_learning_rate),
            ("smoothing", self.smoothing),
        ] {
            if !value.is_finite() {
                return Err(RangeTestError::NotFinite { parameter, value });
            }
        }
        match self.sweep {
            Sweep::Linear if self.start_learning_rate < 0.0 => {
                return Err(RangeTestError::TooLow {
                    parameter: "start_learning_rate",
                    value: self.start_learning_rate,
                    expected: "at least 0",
                });
            }
            Sweep::Exponential if self.start_learning_rate <= 0.0 => {
                return Err(RangeTestError::TooLow {
                    parameter: "start_learning_rate",
                    value: self.start_learning_rate,
                    expected: "above 0 for an exponential sweep",
                });
            }
            _ => {}
        }
        if self.end_learning_rate <= self.start_learning_rate {
            return Err(RangeTestError::EndNotAboveStart {
                start: self.start_learning_rate,
                end: self.end_learning_rate,
            });
        }
        if self.steps < 2 {
            return Err(RangeTestError::TooFewSteps { steps: self.steps });
        }
        if !(0.0..1.0).contains(&self.smoothing) {
            return Err(RangeTestError::Smoothing {
                value: self.smoothing,
            });
        }
        if self.divergence_factor.is_nan() || self.divergence_factor <= 1.0 {
            return Err(RangeTestError::DivergenceFactor {
                value: self.divergence_factor,
            });
        }
        Ok(RangeTest { config: self })
    }
}

/// One step of the sweep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RangeTestPoint {
    /// The rate the step trained at.
    pub learning_rate: f64,
    /// The loss the training step returned.
    pub loss: f64,
    /// fastai's smoothed loss: the exponential moving average `m_i = β m_{i-1} + (1 - β) loss_i`
    /// from `m_{-1} = 0`, divided by `1 - β^(i+1)` to undo the pull towards that 0 (Adam's bias
    /// correction). A constant loss has itself as smoothed loss.
    pub smoothed_loss: f64,
}

/// Why a range test ended.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum StopReason {
    /// The sweep reached the end rate.
    Completed,
    /// The smoothed loss of the last point passed `divergence_factor` times the best one.
    Diverged { best_smoothed_loss: f64 },
    /// The last point's loss was NaN or infinite.
    NonFiniteLoss,
}

/// The bounds suggested by a range test, and where they come from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Suggestion {
    /// `max_learning_rate / 4`.
    pub base_learning_rate: f64,
    /// `minimum_learning_rate / 4`.
    pub max_learning_rate: f64,
    /// The rate at the lowest smoothed loss.
    pub minimum_learning_rate: f64,
    /// The index of that point in the series.
    pub minimum_index: usize,
}

impl Suggestion {
    /// What [`max_learning_rate`](Self::max_learning_rate) is below the rate at the lowest
    /// smoothed loss.
    pub const MAX_DIVISOR: f64 = 4.0;
    /// What [`base_learning_rate`](Self::base_learning_rate) is below the max.
    pub const BASE_DIVISOR: f64 = 4.0;

    /// The suggestion for a curve of `(learning_rate, smoothed_loss)` points in sweep order.
    ///
    /// The rule: find the lowest finite smoothed loss (the first one, on a tie) and its rate
    /// `r_min`; the max bound is `r_min / 4` and the base bound `r_min / 16`. `None` when the
    /// lowest point is the first: the loss never fell.
    ///
    /// Why: Smith reads the max bound off where the loss stops falling, which is `r_min`. But
    /// the moving average lags the raw loss, so its minimum comes after the raw loss has
    /// turned up, close to where training diverges: on `f(w) = a w²/2` under noisy SGD,
    /// `r_min` lies between half and twice the divergence threshold `2/a` (see the crate's
    /// tests). Dividing by 4 brings the peak of the cycle back to where training converges,
    /// whatever the lag. The base is a quarter of the max, the paper's rule of thumb for the
    /// triangular policy ("base_lr 1/3 or 1/4 of max_lr"), so that the cycle spans the steep
    /// part of the curve. fastai divides `r_min` by 10 to choose one fixed rate; a cycle spends
    /// most of its steps below its peak, so its peak can be higher.
    pub fn from_curve(points: impl IntoIterator<Item = (f64, f64)>) -> Option<Suggestion> {
        let mut minimum: Option<(usize, f64, f64)> = None;
        for (index, (learning_rate, smoothed)) in points.into_iter().enumerate() {
            if !smoothed.is_finite() {
                continue;
            }
            if minimum.is_none_or(|(_, _, best)| smoothed < best) {
                minimum = Some((index, learning_rate, smoothed));
            }
        }
        let (minimum_index, minimum_learning_rate, _) = minimum?;
        if minimum_index == 0 {
            return None;
        }
        let max_learning_rate = minimum_learning_rate / Self::MAX_DIVISOR;
        Some(Suggestion {
            base_learning_rate: max_learning_rate / Self::BASE_DIVISOR,
            max_learning_rate,
            minimum_learning_rate,
            minimum_index,
        })
    }
}

/// What a range test measured, and the bounds it suggests.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeTestResult {
    points: Vec<RangeTestPoint>,
    stop: StopReason,
    suggestion: Option<Suggestion>,
}

impl RangeTestResult {
    /// The series, one point per step taken, the one that stopped the test included.
    pub fn points(&self) -> &[RangeTestPoint] {
        &self.points
    }

    /// Why the test ended.
    pub fn stop(&self) -> StopReason {
        self.stop
    }

    /// Whether the test ended before the end rate (divergence or a non-finite loss).
    pub fn stopped_early(&self) -> bool {
        self.stop != StopReason::Completed
    }

    /// The suggested bounds, by the rule of [`Suggestion::from_curve`]; `None` when the loss
    /// never fell.
    pub fn suggestion(&self) -> Option<Suggestion> {
        self.suggestion
    }

    /// A [`CyclicLrConfig`] on the suggested bounds, rising for `step_size_up` steps (Smith
    /// advises 2 to 10 epochs' worth).
    ///
    /// # Errors
    /// [`RangeTestError::NoSuggestion`] when the loss never fell.
    pub fn cyclic_lr_config(&self, step_size_up: u64) -> Result<CyclicLrConfig, RangeTestError> {
        let suggestion = self.suggestion.ok_or(RangeTestError::NoSuggestion)?;
        Ok(CyclicLrConfig::new(
            suggestion.base_learning_rate,
            suggestion.max_learning_rate,
            step_size_up,
        ))
    }

    /// Writes the series as CSV: a header `step,learning_rate,loss,smoothed_loss`, then one
    /// line per point, numbers as Python's `repr` writes them (`nan`, `inf` included).
    ///
    /// # Errors
    /// Those of `out`.
    pub fn write_csv(&self, mut out: impl io::Write) -> io::Result<()> {
        writeln!(out, "step,learning_rate,loss,smoothed_loss")?;
        for (step, point) in self.points.iter().enumerate() {
            writeln!(
                out,
                "{step},{},{},{}",
                PyFloat(point.learning_rate),
                PyFloat(point.loss),
                PyFloat(point.smoothed_loss)
            )?;
        }
        Ok(())
    }
}

/// A checked range test configuration, ready to run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RangeTest {
    config: RangeTestConfig,
}

impl RangeTest {
    /// The number of steps of a complete sweep.
    pub fn steps(&self) -> usize {
        self.config.steps
    }

    /// The rate of step `step` (0-based): the start rate at 0, the end rate at `steps - 1`
    /// exactly, in between as the [`Sweep`] says.
    pub fn learning_rate(&self, step: usize) -> f64 {
        let RangeTestConfig {
            start_learning_rate: start,
            end_learning_rate: end,
            steps,
            ..
        } = self.config;
        if step == 0 {
            return start;
        }
        if step >= steps - 1 {
            return end;
        }
        let t = step as f64 / (steps - 1) as f64;
        match self.config.sweep {
            Sweep::Linear => start + (end - start) * t,
            Sweep::Exponential => {
                let ratio = end / start;
                if ratio.is_finite() {
                    start * ratio.powf(t)
                } else {
                    // Over more than 308 decades: in logarithms, which cannot overflow.
                    (start.ln() + (end.ln() - start.ln()) * t).exp()
                }
            }
        }
    }

    /// Runs the test: for each rate of the sweep, sets it on `optimizer` and calls
    /// `step(optimizer, rate)`, which trains one step and returns the loss. Stops after the
    /// last rate, or early on a non-finite loss or once the smoothed loss passes
    /// `divergence_factor` times its best (only while that best is positive: the factor means
    /// nothing for losses that can go negative).
    ///
    /// However it ends (a result, an error of `step`, even a panic), every variable of `vs`
    /// (trainable or not, such as batch-norm statistics) is copied back bit for bit from a
    /// copy taken at the start, and `optimizer`'s rate is set to `restore_lr` in every group:
    /// tch has no getter for it, so say which. To give a [`CyclicLr`](crate::CyclicLr)'s rates
    /// back (per group, say), call its `apply` afterwards. The copy doubles the memory the
    /// weights take while the test runs.
    ///
    /// What cannot be restored is the optimizer's own state: libtorch keeps momentum buffers
    /// and Adam's moments inside the optimizer, and tch gives no way to read or write them,
    /// so they hold the sweep's steps afterwards. Train with a fresh optimizer after the test,
    /// or run the test on a throwaway one built over the same `VarStore`. The gradients of the
    /// last step stay in the variables too; the next `backward_step` clears them.
    ///
    /// # Errors
    /// [`RangeTestError::NotFinite`] or [`RangeTestError::TooLow`] for `restore_lr` (before
    /// anything runs); [`RangeTestError::Step`] with the error `step` returned;
    /// [`RangeTestError::Torch`] when libtorch fails to copy the weights.
    pub fn run<T, E, F>(
        &self,
        vs: &VarStore,
        optimizer: &mut T,
        restore_lr: f64,
        step: F,
    ) -> Result<RangeTestResult, RangeTestError<E>>
    where
        T: LearningRateTarget + ?Sized,
        F: FnMut(&mut T, f64) -> Result<f64, E>,
    {
        self.run_with_progress(vs, optimizer, restore_lr, step, |_, _| {})
    }

    /// [`run`](Self::run), calling `progress(step, point)` after each step (to move a progress
    /// bar, say; [`steps`](Self::steps) is the most there will be).
    ///
    /// # Errors
    /// Those of [`run`](Self::run).
    pub fn run_with_progress<T, E, F, P>(
        &self,
        vs: &VarStore,
        optimizer: &mut T,
        restore_lr: f64,
        mut step: F,
        mut progress: P,
    ) -> Result<RangeTestResult, RangeTestError<E>>
    where
        T: LearningRateTarget + ?Sized,
        F: FnMut(&mut T, f64) -> Result<f64, E>,
        P: FnMut(usize, &RangeTestPoint),
    {
        if !restore_lr.is_finite() {
            return Err(RangeTestError::NotFinite {
                parameter: "restore_lr",
                value: restore_lr,
            });
        }
        if restore_lr < 0.0 {
            return Err(RangeTestError::TooLow {
                parameter: "restore_lr",
                value: restore_lr,
                expected: "at least 0",
            });
        }
        let mut guard = Restore::new(vs, optimizer, restore_lr)?;
        let swept = self.sweep(&mut guard, &mut step, &mut progress);
        let restored = guard.restore();
        let result = swept?;
        restored.map_err(RangeTestError::widen)?;
        Ok(result)
    }

    fn sweep<T, E, F, P>(
        &self,
        guard: &mut Restore<'_, T>,
        step: &mut F,
        progress: &mut P,
    ) -> Result<RangeTestResult, RangeTestError<E>>
    where
        T: LearningRateTarget + ?Sized,
        F: FnMut(&mut T, f64) -> Result<f64, E>,
        P: FnMut(usize, &RangeTestPoint),
    {
        let beta = self.config.smoothing;
        let mut points = Vec::with_capacity(self.config.steps);
        let mut average = 0.0;
        let mut beta_power = 1.0;
        let mut best = f64::INFINITY;
        let mut stop = StopReason::Completed;
        for index in 0..self.config.steps {
            let learning_rate = self.learning_rate(index);
            guard.target.set_learning_rate(learning_rate);
            let loss = step(guard.target, learning_rate).map_err(|error| RangeTestError::Step {
                step: index,
                learning_rate,
                error,
            })?;
            average = beta * average + (1.0 - beta) * loss;
            beta_power *= beta;
            let point = RangeTestPoint {
                learning_rate,
                loss,
                smoothed_loss: average / (1.0 - beta_power),
            };
            points.push(point);
            progress(index, &point);
            if !loss.is_finite() || !point.smoothed_loss.is_finite() {
                stop = StopReason::NonFiniteLoss;
                break;
            }
            best = best.min(point.smoothed_loss);
            if best > 0.0 && point.smoothed_loss > self.config.divergence_factor * best {
                stop = StopReason::Diverged {
                    best_smoothed_loss: best,
                };
                break;
            }
        }
        let suggestion =
            Suggestion::from_curve(points.iter().map(|p| (p.learning_rate, p.smoothed_loss)));
        Ok(RangeTestResult {
            points,
            stop,
            suggestion,
        })
    }
}

/// Puts the weights and the rate back when dropped, so that an early return or a panic in the
/// training step restores them as surely as the end of the sweep does.
struct Restore<'a, T: LearningRateTarget + ?Sized> {
    target: &'a mut T,
    restore_lr: f64,
    /// Each variable (sharing storage with the `VarStore`'s) and a deep copy of it.
    saved: Vec<(Tensor, Tensor)>,
    restored: bool,
}

impl<'a, T: LearningRateTarget + ?Sized> Restore<'a, T> {
    fn new<E>(
        vs: &VarStore,
        target: &'a mut T,
        restore_lr: f64,
    ) -> Result<Self, RangeTestError<E>> {
        let variables = vs
            .variables_
            .lock()
            .map_err(|_| RangeTestError::Torch("the VarStore's lock is poisoned".to_owned()))?;
        let _no_grad = tch::no_grad_guard();
        let mut saved = Vec::with_capacity(variables.named_variables.len());
        for variable in variables.named_variables.values() {
            let mut copy = variable.f_empty_like()?;
            copy.f_copy_(variable)?;
            saved.push((variable.shallow_clone(), copy));
        }
        Ok(Restore {
            target,
            restore_lr,
            saved,
            restored: false,
        })
    }

    /// Copies every variable back (all of them, even after a failure) and resets the rate.
    fn restore(&mut self) -> Result<(), RangeTestError> {
        self.restored = true;
        self.target.set_learning_rate(self.restore_lr);
        let _no_grad = tch::no_grad_guard();
        let mut first_error = None;
        for (variable, copy) in &mut self.saved {
            if let Err(error) = variable.f_copy_(copy) {
                first_error.get_or_insert(error);
            }
        }
        match first_error {
            Some(error) => Err(error.into()),
            None => Ok(()),
        }
    }
}

impl<T: LearningRateTarget + ?Sized> Drop for Restore<'_, T> {
    fn drop(&mut self) {
        if !self.restored {
            // Unwinding from a panic in the training step: nowhere to report a failure.
            let _ = self.restore();
        }
    }
}
