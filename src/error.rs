//! The errors of this crate: each names the parameter and the value that was refused.

use crate::pyfmt::PyFloat;

/// Everything that can go wrong when configuring, stepping, saving or loading a scheduler.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A number that must be finite was NaN or infinite.
    #[error("{parameter} must be a finite number, got {}", PyFloat(*.value))]
    NotFinite { parameter: &'static str, value: f64 },

    /// A learning rate was negative.
    #[error("{parameter} must not be negative, got {}", PyFloat(*.value))]
    Negative { parameter: &'static str, value: f64 },

    /// A step size was zero.
    #[error("{parameter} must be a positive number of steps, got 0")]
    ZeroStepSize { parameter: &'static str },

    /// A cycle longer than 2^53 steps, past which steps are no longer exact as `f64`.
    #[error(
        "step_size_up + step_size_down must be at most 2^53 steps, got {step_size_up} + {step_size_down}"
    )]
    CycleTooLong {
        step_size_up: u64,
        step_size_down: u64,
    },

    /// `exp_gamma` outside (0, 1]: `exp_gamma^iterations` must stay a scale in [0, 1].
    #[error("exp_gamma must be in (0, 1], got {}", PyFloat(*.value))]
    ExpGamma { value: f64 },

    /// A momentum bound outside [0, 1].
    #[error("{parameter} must be in [0, 1], got {}", PyFloat(*.value))]
    Momentum { parameter: &'static str, value: f64 },

    /// Two per-group lists of different lengths.
    #[error(
        "{parameter} has {len} values, but {other} has {other_len}: give one value per parameter group"
    )]
    GroupLengths {
        parameter: &'static str,
        len: usize,
        other: &'static str,
        other_len: usize,
    },

    /// A per-group list with no value in it.
    #[error("{parameter} is an empty list: give one value per parameter group")]
    NoGroups { parameter: &'static str },

    /// An epoch outside the range the scheduler accepts.
    #[error("{parameter} must be in {min}..={max}, got {value}")]
    Epoch {
        parameter: &'static str,
        value: i64,
        min: i64,
        max: i64,
    },

    /// A step past the last epoch the counter holds exactly.
    #[error("cannot step past epoch {max}: the epoch counter would overflow")]
    EpochOverflow { max: i64 },

    /// A custom scale function returned something outside [0, 1].
    #[error("scale_fn({}) returned {}, but it must return a number in [0, 1]", PyFloat(*.x), PyFloat(*.value))]
    ScaleFn { x: f64, value: f64 },

    /// A name that is not one of the accepted ones (mode, scale_mode).
    #[error("{parameter} must be one of {expected}, got {value:?}")]
    Unknown {
        parameter: &'static str,
        value: String,
        expected: &'static str,
    },

    /// A saved state that is not a scheduler state.
    #[error("invalid scheduler state: {0}")]
    StateFormat(String),

    /// A saved state of a format version this crate cannot read.
    #[error(
        "scheduler state version {found} is not supported (this version of the crate reads {supported})"
    )]
    StateVersion { found: u64, supported: u64 },

    /// A saved state that does not belong to this scheduler.
    #[error("the state has {field} = {saved}, but this scheduler has {current}")]
    StateMismatch {
        field: String,
        saved: String,
        current: String,
    },

    /// The optimizer cannot tell how many parameter groups it has, and the schedule has one
    /// learning rate per group.
    #[error(
        "the schedule has {scheduled} parameter groups, but this optimizer cannot tell how many it has: wrap it in cyclic_lr::TchOptimizer"
    )]
    UnknownGroups { scheduled: usize },

    /// The schedule and the optimizer have different numbers of parameter groups.
    #[error("the schedule has {scheduled} parameter groups, but the optimizer has {optimizer}")]
    GroupCount { scheduled: usize, optimizer: usize },

    /// The optimizer cannot have its momentum set the way the schedule needs.
    #[error("cannot cycle the momentum of {optimizer}: {reason}")]
    MomentumUnsupported {
        optimizer: &'static str,
        reason: &'static str,
    },

    /// libtorch refused an operation (building an optimizer, say).
    #[error("libtorch: {0}")]
    Torch(String),
}

impl From<tch::TchError> for Error {
    fn from(error: tch::TchError) -> Self {
        Error::Torch(error.to_string())
    }
}
