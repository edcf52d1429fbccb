//! [`CyclicLr`], Paddle's `paddle.optimizer.lr.CyclicLR` with PyTorch's per-group bounds and
//! momentum cycling, and its configuration [`CyclicLrConfig`].

use std::fmt::Write as _;
use std::io::Write as _;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::pyfmt::PyFloat;
use crate::schedule::{MAX_EPOCH, Mode, Phase, Scale, ScaleFn, ScaleMode, Schedule};
use crate::state::{STATE_VERSION, SavedConfig, State};
use crate::target::{LearningRateTarget, MomentumSupport};

/// One value for every parameter group, or one value per group.
///
/// Converts from `f64`, `Vec<f64>`, `&[f64]` and `[f64; N]`. Serialized as a number or a list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PerGroup {
    /// The same value for all groups (set with `set_lr`, whatever the optimizer's groups).
    All(f64),
    /// One value per group, in group order (set with `set_lr_group`).
    Each(Vec<f64>),
}

impl PerGroup {
    fn values(&self) -> &[f64] {
        match self {
            PerGroup::All(value) => std::slice::from_ref(value),
            PerGroup::Each(values) => values,
        }
    }

    /// The value of `group`; `None` past the end of a list.
    fn get(&self, group: usize) -> Option<f64> {
        match self {
            PerGroup::All(value) => Some(*value),
            PerGroup::Each(values) => values.get(group).copied(),
        }
    }
}

impl From<f64> for PerGroup {
    fn from(value: f64) -> Self {
        PerGroup::All(value)
    }
}

impl From<Vec<f64>> for PerGroup {
    fn from(values: Vec<f64>) -> Self {
        PerGroup::Each(values)
    }
}

impl From<&[f64]> for PerGroup {
    fn from(values: &[f64]) -> Self {
        PerGroup::Each(values.to_vec())
    }
}

impl<const N: usize> From<[f64; N]> for PerGroup {
    fn from(values: [f64; N]) -> Self {
        PerGroup::Each(values.to_vec())
    }
}

/// PyTorch's default momentum bounds.
const DEFAULT_BASE_MOMENTUM: f64 = 0.8;
const DEFAULT_MAX_MOMENTUM: f64 = 0.9;

/// The configuration of a [`CyclicLr`], with Paddle's parameter names and defaults.
///
/// ```
/// use cyclic_lr::{CyclicLrConfig, Mode};
///
/// let scheduler = CyclicLrConfig::new(0.5, 1.0, 15)
///     .with_step_size_down(5)
///     .with_mode(Mode::Triangular2)
///     .init()?;
/// assert_eq!(scheduler.last_lr(), 0.5);
/// # Ok::<(), cyclic_lr::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct CyclicLrConfig {
    base_learning_rate: PerGroup,
    max_learning_rate: PerGroup,
    step_size_up: u64,
    step_size_down: Option<u64>,
    mode: Mode,
    exp_gamma: f64,
    scale_fn: Option<ScaleFn>,
    scale_mode: ScaleMode,
    cycle_momentum: bool,
    base_momentum: PerGroup,
    max_momentum: PerGroup,
    last_epoch: i64,
    verbose: bool,
}

impl CyclicLrConfig {
    /// Cycles between `base_learning_rate` and `max_learning_rate` (each one value, or one per
    /// parameter group), rising for `step_size_up` steps. Everything else takes Paddle's
    /// default: `step_size_down = step_size_up`, triangular, `exp_gamma` 1, scale mode cycle,
    /// `last_epoch` -1, not verbose; and PyTorch's momentum bounds 0.8 and 0.9, with momentum
    /// cycling off as in Paddle.
    pub fn new(
        base_learning_rate: impl Into<PerGroup>,
        max_learning_rate: impl Into<PerGroup>,
        step_size_up: u64,
    ) -> Self {
        CyclicLrConfig {
            base_learning_rate: base_learning_rate.into(),
            max_learning_rate: max_learning_rate.into(),
            step_size_up,
            step_size_down: None,
            mode: Mode::Triangular,
            exp_gamma: 1.0,
            scale_fn: None,
            scale_mode: ScaleMode::Cycle,
            cycle_momentum: false,
            base_momentum: PerGroup::All(DEFAULT_BASE_MOMENTUM),
            max_momentum: PerGroup::All(DEFAULT_MAX_MOMENTUM),
            last_epoch: -1,
            verbose: false,
        }
    }

    /// Steps of the falling half of a cycle (default: `step_size_up`).
    pub fn with_step_size_down(mut self, step_size_down: u64) -> Self {
        self.step_size_down = Some(step_size_down);
        self
    }

    /// The built-in amplitude scaling (ignored when a `scale_fn` is given).
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// The decay of [`Mode::ExpRange`]: the amplitude is scaled by `exp_gamma^iterations`.
    pub fn with_exp_gamma(mut self, exp_gamma: f64) -> Self {
        self.exp_gamma = exp_gamma;
        self
    }

    /// A custom amplitude scaling of the cycle number or of the iterations (see
    /// [`with_scale_mode`](Self::with_scale_mode)); replaces `mode`.
    pub fn with_scale_fn(mut self, scale_fn: impl Fn(f64) -> f64 + Send + Sync + 'static) -> Self {
        self.scale_fn = Some(ScaleFn::new(scale_fn));
        self
    }

    /// What a custom `scale_fn` is evaluated on (the built-in modes bring their own).
    pub fn with_scale_mode(mut self, scale_mode: ScaleMode) -> Self {
        self.scale_mode = scale_mode;
        self
    }

    /// Cycles the momentum (SGD's, RMSprop's) or Adam's beta1 between `base_momentum` and
    /// `max_momentum`, opposite to the learning rate, as PyTorch's `cycle_momentum`.
    pub fn with_cycle_momentum(mut self, cycle_momentum: bool) -> Self {
        self.cycle_momentum = cycle_momentum;
        self
    }

    /// The lower momentum bound, reached at the learning rate's peak (default 0.8). Used,
    /// checked and saved only with [`with_cycle_momentum`](Self::with_cycle_momentum).
    pub fn with_base_momentum(mut self, base_momentum: impl Into<PerGroup>) -> Self {
        self.base_momentum = base_momentum.into();
        self
    }

    /// The upper momentum bound, reached at the learning rate's base (default 0.9). Used,
    /// checked and saved only with [`with_cycle_momentum`](Self::with_cycle_momentum).
    pub fn with_max_momentum(mut self, max_momentum: impl Into<PerGroup>) -> Self {
        self.max_momentum = max_momentum.into();
        self
    }

    /// The epoch training resumes after: the first rate is the one at `last_epoch + 1`.
    pub fn with_last_epoch(mut self, last_epoch: i64) -> Self {
        self.last_epoch = last_epoch;
        self
    }

    /// Prints Paddle's line `Epoch {e}: CyclicLR set learning rate to {lr}.` on each step.
    pub fn with_verbose(mut self, verbose: bool) -> Self {
        self.verbose = verbose;
        self
    }

    /// Checks the configuration and builds the scheduler, which performs its first step as
    /// Paddle's constructor does.
    ///
    /// # Errors
    /// An [`Error`] naming the first parameter refused: a non-finite or negative learning
    /// rate, a zero step size, a cycle over 2^53 steps, `exp_gamma` outside (0, 1] in
    /// exp_range mode, a momentum bound outside [0, 1], per-group lists of different or zero
    /// length, `last_epoch` outside -1..[`MAX_EPOCH`], or a `scale_fn` outside [0, 1] at the
    /// first epoch.
    pub fn init(self) -> Result<CyclicLr, Error> {
        CyclicLr::new(self)
    }

    fn saved(&self, step_size_down: u64) -> SavedConfig {
        SavedConfig {
            base_learning_rate: self.base_learning_rate.clone(),
            max_learning_rate: self.max_learning_rate.clone(),
            step_size_up: self.step_size_up,
            step_size_down,
            mode: self.mode,
            exp_gamma: self.exp_gamma,
            scale_fn: self.scale_fn.is_some(),
            scale_mode: self.scale_mode,
            cycle_momentum: self.cycle_momentum,
            base_momentum: self.base_momentum.clone(),
            max_momentum: self.max_momentum.clone(),
        }
    }
}

/// Checks a per-group list's values and returns its length when it is a list.
fn check_values(
    parameter: &'static str,
    values: &PerGroup,
    check: impl Fn(f64) -> Result<(), Error>,
) -> Result<Option<usize>, Error> {
    if let PerGroup::Each(list) = values {
        if list.is_empty() {
            return Err(Error::NoGroups { parameter });
        }
    }
    for &value in values.values() {
        if !value.is_finite() {
            return Err(Error::NotFinite { parameter, value });
        }
        check(value)?;
    }
    Ok(match values {
        PerGroup::All(_) => None,
        PerGroup::Each(list) => Some(list.len()),
    })
}

/// The bounds of one parameter group.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Bounds {
    base_lr: f64,
    max_lr: f64,
    base_momentum: f64,
    max_momentum: f64,
}

/// The cyclical learning rate scheduler: Paddle's `CyclicLR`, driving a tch optimizer.
///
/// Construction performs the first step (the rate at epoch `last_epoch + 1`, which is
/// `base_learning_rate` by default). After each `opt.step()`, call
/// [`step_with`](Self::step_with) to advance one epoch and set the optimizer's learning rate
/// (and momentum) for the next step. The rates are a function of the epoch alone.
#[derive(Clone, Debug)]
pub struct CyclicLr {
    schedule: Schedule,
    groups: Vec<Bounds>,
    /// One rate per group given: set group by group rather than all at once.
    per_group: bool,
    cycle_momentum: bool,
    /// Every group has the same momentum bounds, so one `set_momentum` serves them all.
    momentum_shared: bool,
    last_epoch: i64,
    last_lr: Vec<f64>,
    last_momentum: Vec<f64>,
    verbose: bool,
    saved: SavedConfig,
}

impl CyclicLr {
    /// Same as [`CyclicLrConfig::init`].
    ///
    /// # Errors
    /// Those of [`CyclicLrConfig::init`].
    pub fn new(mut config: CyclicLrConfig) -> Result<Self, Error> {
        if !config.cycle_momentum {
            // Unused bounds are neither checked (as in PyTorch) nor kept: a list of another
            // length or a NaN there must not reach the groups or the saved state.
            config.base_momentum = PerGroup::All(DEFAULT_BASE_MOMENTUM);
            config.max_momentum = PerGroup::All(DEFAULT_MAX_MOMENTUM);
        }
        let non_negative = |parameter| {
            move |value: f64| {
                if value < 0.0 {
                    Err(Error::Negative { parameter, value })
                } else {
                    Ok(())
                }
            }
        };
        let unit = |parameter| {
            move |value: f64| {
                if (0.0..=1.0).contains(&value) {
                    Ok(())
                } else {
                    Err(Error::Momentum { parameter, value })
                }
            }
        };
        let mut lists = vec![
            (
                "base_learning_rate",
                check_values(
                    "base_learning_rate",
                    &config.base_learning_rate,
                    non_negative("base_learning_rate"),
                )?,
            ),
            (
                "max_learning_rate",
                check_values(
                    "max_learning_rate",
                    &config.max_learning_rate,
                    non_negative("max_learning_rate"),
                )?,
            ),
        ];
        if config.cycle_momentum {
            lists.push((
                "base_momentum",
                check_values(
                    "base_momentum",
                    &config.base_momentum,
                    unit("base_momentum"),
                )?,
            ));
            lists.push((
                "max_momentum",
                check_values("max_momentum", &config.max_momentum, unit("max_momentum"))?,
            ));
        }
        let mut group_count: Option<(&'static str, usize)> = None;
        for (parameter, len) in lists {
            match (len, group_count) {
                (Some(len), Some((other, other_len))) if len != other_len => {
                    return Err(Error::GroupLengths {
                        parameter,
                        len,
                        other,
                        other_len,
                    });
                }
                (Some(len), None) => group_count = Some((parameter, len)),
                _ => {}
            }
        }
        let scale = Scale::new(
            config.mode,
            config.exp_gamma,
            config.scale_fn.clone(),
            config.scale_mode,
        );
        if !config.exp_gamma.is_finite() {
            return Err(Error::NotFinite {
                parameter: "exp_gamma",
                value: config.exp_gamma,
            });
        }
        let step_size_down = config.step_size_down.unwrap_or(config.step_size_up);
        let schedule = Schedule::new(config.step_size_up, step_size_down, scale)?;
        if !(-1..MAX_EPOCH).contains(&config.last_epoch) {
            return Err(Error::Epoch {
                parameter: "last_epoch",
                value: config.last_epoch,
                min: -1,
                max: MAX_EPOCH - 1,
            });
        }

        let n = group_count.map_or(1, |(_, len)| len);
        // Every list has n values (checked above), so `get` always finds one.
        let groups: Vec<Bounds> = (0..n)
            .map_while(|g| {
                Some(Bounds {
                    base_lr: config.base_learning_rate.get(g)?,
                    max_lr: config.max_learning_rate.get(g)?,
                    base_momentum: config.base_momentum.get(g)?,
                    max_momentum: config.max_momentum.get(g)?,
                })
            })
            .collect();
        if groups.len() != n {
            return Err(Error::NoGroups {
                parameter: "base_learning_rate",
            });
        }
        let momentum_shared = groups.iter().all(|b| {
            b.base_momentum.to_bits() == groups[0].base_momentum.to_bits()
                && b.max_momentum.to_bits() == groups[0].max_momentum.to_bits()
        });
        let mut scheduler = CyclicLr {
            schedule,
            per_group: group_count.is_some(),
            cycle_momentum: config.cycle_momentum,
            momentum_shared,
            last_epoch: config.last_epoch,
            last_lr: groups.iter().map(|b| b.base_lr).collect(),
            last_momentum: if config.cycle_momentum {
                groups.iter().map(|b| b.max_momentum).collect()
            } else {
                Vec::new()
            },
            groups,
            verbose: config.verbose,
            saved: config.saved(step_size_down),
        };
        scheduler.step()?;
        Ok(scheduler)
    }

    /// The epoch of the current rate (Paddle's `last_epoch`).
    pub fn last_epoch(&self) -> i64 {
        self.last_epoch
    }

    /// The current learning rate of the first parameter group (Paddle's `last_lr`).
    pub fn last_lr(&self) -> f64 {
        self.last_lr[0]
    }

    /// The current learning rate of every scheduled group.
    pub fn last_lrs(&self) -> &[f64] {
        &self.last_lr
    }

    /// The current momentum of every scheduled group; empty without momentum cycling.
    pub fn last_momentums(&self) -> &[f64] {
        &self.last_momentum
    }

    /// Paddle's `get_lr()`: the learning rate (first group) at the current epoch. The same
    /// as [`last_lr`](Self::last_lr), since the rate is a function of the epoch.
    pub fn get_lr(&self) -> f64 {
        self.last_lr()
    }

    /// The number of scheduled parameter groups (1 when every value is shared).
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// Whether each group is set on its own (lists were given) rather than all at once.
    pub fn is_per_group(&self) -> bool {
        self.per_group
    }

    /// Whether the momentum is cycled.
    pub fn cycles_momentum(&self) -> bool {
        self.cycle_momentum
    }

    /// The schedule's shape, the pure part of the scheduler.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The learning rate of the first group at any epoch, without changing the scheduler.
    ///
    /// # Errors
    /// [`Error::Epoch`] outside 0..=[`MAX_EPOCH`]; [`Error::ScaleFn`] when a custom scale
    /// function leaves [0, 1] there.
    pub fn learning_rate_at(&self, epoch: i64) -> Result<f64, Error> {
        let bounds = self.groups[0];
        Ok(self
            .schedule
            .phase(epoch)?
            .learning_rate(bounds.base_lr, bounds.max_lr))
    }

    /// Advances one epoch (Paddle's `step()`) and returns the new learning rate of the first
    /// group. Call it after the optimizer's step; to also set the rate on the optimizer, use
    /// [`step_with`](Self::step_with).
    ///
    /// # Errors
    /// [`Error::EpochOverflow`] past [`MAX_EPOCH`]; [`Error::ScaleFn`] when a custom scale
    /// function leaves [0, 1]. The scheduler is unchanged on error.
    pub fn step(&mut self) -> Result<f64, Error> {
        let epoch = self.last_epoch.checked_add(1).filter(|&e| e <= MAX_EPOCH);
        let epoch = epoch.ok_or(Error::EpochOverflow { max: MAX_EPOCH })?;
        self.set_epoch(epoch)
    }

    /// Jumps to `epoch` (Paddle's `step(epoch)`) and returns its learning rate.
    ///
    /// # Errors
    /// [`Error::Epoch`] outside 0..=[`MAX_EPOCH`]; [`Error::ScaleFn`] as for
    /// [`step`](Self::step). The scheduler is unchanged on error.
    pub fn step_to(&mut self, epoch: i64) -> Result<f64, Error> {
        self.set_epoch(epoch)
    }

    /// Advances one epoch and sets the new learning rate (and momentum) on `target`: the one
    /// call a training loop makes after `opt.step()`.
    ///
    /// # Errors
    /// Those of [`step`](Self::step), and those of [`apply`](Self::apply), which are checked
    /// first: on any error neither the scheduler nor the optimizer is changed.
    pub fn step_with<T: LearningRateTarget + ?Sized>(
        &mut self,
        target: &mut T,
    ) -> Result<f64, Error> {
        self.check_target(target)?;
        let lr = self.step()?;
        self.write(target);
        Ok(lr)
    }

    /// Sets the current learning rate (and momentum) on `target`, for instance on an optimizer
    /// built before the scheduler, or after loading a state.
    ///
    /// # Errors
    /// [`Error::UnknownGroups`] or [`Error::GroupCount`] when the schedule has one rate per
    /// group and the target cannot confirm it has that many groups;
    /// [`Error::MomentumUnsupported`] when the momentum is cycled and the target cannot take
    /// it (per group, or at all).
    pub fn apply<T: LearningRateTarget + ?Sized>(&self, target: &mut T) -> Result<(), Error> {
        self.check_target(target)?;
        self.write(target);
        Ok(())
    }

    fn check_target<T: LearningRateTarget + ?Sized>(&self, target: &T) -> Result<(), Error> {
        let scheduled = self.groups.len();
        if self.per_group {
            match target.group_count() {
                None => return Err(Error::UnknownGroups { scheduled }),
                Some(optimizer) if optimizer != scheduled => {
                    return Err(Error::GroupCount {
                        scheduled,
                        optimizer,
                    });
                }
                Some(_) => {}
            }
        }
        if self.cycle_momentum {
            match target.momentum_support() {
                MomentumSupport::None { optimizer } => {
                    return Err(Error::MomentumUnsupported {
                        optimizer,
                        reason: "it has no momentum",
                    });
                }
                MomentumSupport::UnknownKind { optimizer } => {
                    return Err(Error::MomentumUnsupported {
                        optimizer,
                        reason: "its kind is unknown, and an RMSprop built with momentum 0 fails at its first step after a momentum is set; wrap it in cyclic_lr::TchOptimizer",
                    });
                }
                MomentumSupport::AllGroups { optimizer }
                | MomentumSupport::AllGroupsAboveZero { optimizer }
                    if !self.momentum_shared =>
                {
                    return Err(Error::MomentumUnsupported {
                        optimizer,
                        reason: "tch sets its momentum for all parameter groups at once; give every group the same base_momentum and max_momentum",
                    });
                }
                MomentumSupport::AllGroupsAboveZero { optimizer }
                    if !self.momentum_stays_above_zero() =>
                {
                    return Err(Error::MomentumUnsupported {
                        optimizer,
                        reason: "libtorch fails it once a step with momentum 0 is followed by one above 0; keep the momentum above 0 (base_momentum and max_momentum > 0, and max_momentum - (max_momentum - base_momentum) > 0 in floating point)",
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether no momentum of the schedule is 0. The lowest is `max - (max - base)` (for
    /// `base <= max`): the amplitude is scaled by `scale_factor * scale <= 1`, and rounding is
    /// monotonic, so no scaled amplitude exceeds the full one. It can be 0 for a base tiny
    /// next to the max.
    fn momentum_stays_above_zero(&self) -> bool {
        self.groups.iter().all(|b| {
            let lowest = b.max_momentum - (b.max_momentum - b.base_momentum);
            b.base_momentum > 0.0 && b.max_momentum > 0.0 && lowest > 0.0
        })
    }

    /// Writes the current values; `check_target` has accepted `target`.
    fn write<T: LearningRateTarget + ?Sized>(&self, target: &mut T) {
        if self.per_group {
            for (group, &lr) in self.last_lr.iter().enumerate() {
                target.set_group_learning_rate(group, lr);
            }
        } else {
            target.set_learning_rate(self.last_lr[0]);
        }
        if self.cycle_momentum {
            if self.momentum_shared {
                target.set_momentum(self.last_momentum[0]);
            } else {
                for (group, &momentum) in self.last_momentum.iter().enumerate() {
                    target.set_group_momentum(group, momentum);
                }
            }
        }
    }

    fn set_epoch(&mut self, epoch: i64) -> Result<f64, Error> {
        let phase = self.schedule.phase(epoch)?;
        self.set_phase(epoch, phase);
        if self.verbose {
            // Like Python's print, minus the panic of `println!` on a closed stdout.
            let _ = writeln!(std::io::stdout().lock(), "{}", self.verbose_line());
        }
        Ok(self.last_lr[0])
    }

    fn set_phase(&mut self, epoch: i64, phase: Phase) {
        self.last_epoch = epoch;
        for (lr, bounds) in self.last_lr.iter_mut().zip(&self.groups) {
            *lr = phase.learning_rate(bounds.base_lr, bounds.max_lr);
        }
        for (momentum, bounds) in self.last_momentum.iter_mut().zip(&self.groups) {
            *momentum = phase.momentum(bounds.base_momentum, bounds.max_momentum);
        }
    }

    /// Paddle's verbose line, `Epoch {last_epoch}: CyclicLR set learning rate to {lr}.`; with
    /// several groups the rates are written as a Python list.
    pub fn verbose_line(&self) -> String {
        let mut line = format!("Epoch {}: CyclicLR set learning rate to ", self.last_epoch);
        if self.per_group {
            line.push('[');
            for (i, lr) in self.last_lr.iter().enumerate() {
                let sep = if i == 0 { "" } else { ", " };
                let _ = write!(line, "{sep}{}", PyFloat(*lr));
            }
            line.push(']');
        } else {
            let _ = write!(line, "{}", PyFloat(self.last_lr[0]));
        }
        line.push('.');
        line
    }

    /// Paddle's `state_keys()`: the keys of Paddle's own state.
    pub fn state_keys(&self) -> &'static [&'static str] {
        &["last_epoch", "last_lr"]
    }

    /// The scheduler's state (Paddle's `state_dict()`), with its configuration and format
    /// version so that a load can check it belongs here. Serialize it with serde.
    pub fn state_dict(&self) -> State {
        State {
            version: Some(STATE_VERSION),
            last_epoch: self.last_epoch,
            last_lr: if self.per_group {
                PerGroup::Each(self.last_lr.clone())
            } else {
                PerGroup::All(self.last_lr[0])
            },
            last_momentum: self.cycle_momentum.then(|| {
                if self.per_group {
                    PerGroup::Each(self.last_momentum.clone())
                } else {
                    PerGroup::All(self.last_momentum[0])
                }
            }),
            config: Some(self.saved.clone()),
        }
    }

    /// Loads a state (Paddle's `set_state_dict`): one saved by [`state_dict`](Self::state_dict)
    /// or Paddle's own `{"last_epoch": .., "last_lr": ..}`.
    ///
    /// # Errors
    /// [`Error::StateVersion`] for an unknown format version; [`Error::StateMismatch`] naming
    /// the first field that differs from this scheduler's configuration, or a saved rate that
    /// is not this schedule's at the saved epoch; [`Error::Epoch`] for a saved epoch out of
    /// range. The scheduler is unchanged on error.
    pub fn set_state_dict(&mut self, state: &State) -> Result<(), Error> {
        if let Some(found) = state.version {
            if found != STATE_VERSION {
                return Err(Error::StateVersion {
                    found,
                    supported: STATE_VERSION,
                });
            }
        }
        if let Some(saved) = &state.config {
            saved.check_same(&self.saved)?;
        }
        let epoch = state.last_epoch;
        if !(0..=MAX_EPOCH).contains(&epoch) {
            return Err(Error::Epoch {
                parameter: "last_epoch",
                value: epoch,
                min: 0,
                max: MAX_EPOCH,
            });
        }
        let mut loaded = self.clone();
        loaded.set_phase(epoch, self.schedule.phase(epoch)?);
        check_saved_values("last_lr", &state.last_lr, &loaded.last_lr)?;
        if let Some(momentum) = &state.last_momentum {
            check_saved_values("last_momentum", momentum, &loaded.last_momentum)?;
        }
        *self = loaded;
        Ok(())
    }

    /// Paddle's `set_dict`, an alias of [`set_state_dict`](Self::set_state_dict).
    ///
    /// # Errors
    /// Those of [`set_state_dict`](Self::set_state_dict).
    pub fn set_dict(&mut self, state: &State) -> Result<(), Error> {
        self.set_state_dict(state)
    }

    /// Loads a state from JSON bytes; any bytes at all give a value or an error, never a panic.
    ///
    /// # Errors
    /// [`Error::StateFormat`] for bytes that are not a state, then those of
    /// [`set_state_dict`](Self::set_state_dict). The scheduler is unchanged on error.
    pub fn load_state_json(&mut self, json: &[u8]) -> Result<(), Error> {
        self.set_state_dict(&State::from_json(json)?)
    }
}

/// A saved rate must be the one this schedule gives at the saved epoch, to the bit.
fn check_saved_values(field: &'static str, saved: &PerGroup, current: &[f64]) -> Result<(), Error> {
    let same = match saved {
        // A value saved for a scheduler that has none (momentum, when not cycled) is refused.
        PerGroup::All(value) => {
            !current.is_empty() && current.iter().all(|c| c.to_bits() == value.to_bits())
        }
        PerGroup::Each(values) => {
            values.len() == current.len()
                && values
                    .iter()
                    .zip(current)
                    .all(|(s, c)| s.to_bits() == c.to_bits())
        }
    };
    if same {
        return Ok(());
    }
    let list = |values: &[f64]| {
        let items: Vec<String> = values.iter().map(|v| PyFloat(*v).to_string()).collect();
        format!("[{}]", items.join(", "))
    };
    Err(Error::StateMismatch {
        field: field.to_owned(),
        saved: match saved {
            PerGroup::All(value) => PyFloat(*value).to_string(),
            PerGroup::Each(values) => list(values),
        },
        current: if current.len() == 1 {
            PyFloat(current[0]).to_string()
        } else {
            list(current)
        },
    })
}
