//! The cyclical schedule as pure maths: where an epoch falls in its cycle, and how far the
//! amplitude is scaled there. No libtorch, no state beyond what it is given.
//!
//! The formula is Smith's ("Cyclical Learning Rates for Training Neural Networks", 2017,
//! section 3.1) as written in Paddle 3.3.1's `paddle.optimizer.lr.CyclicLR.get_lr`, with the
//! same floating-point operations in the same order, so that every rate equals Paddle's (and
//! PyTorch 2.13's `torch.optim.lr_scheduler.CyclicLR`, which computes the same) to the bit:
//!
//! ```text
//! cycle        = 1 + floor(it / cycle_size)
//! pct          = 1 + it / cycle_size - cycle
//! scale_factor = pct / up_pct                 if pct <= up_pct
//!              = (1 - pct) / (1 - up_pct)     otherwise
//! lr           = base + (max - base) * scale_factor * scale_fn(cycle or it)
//! ```

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The largest epoch a scheduler accepts: 2^53 - 1, the last integer up to which every epoch
/// (and so every iteration count handed to a scale function) is exact as an `f64`.
pub const MAX_EPOCH: i64 = (1 << 53) - 1;

/// The built-in amplitude scalings of the CLR paper.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Mode {
    /// A triangle of constant amplitude.
    #[default]
    Triangular,
    /// A triangle whose amplitude halves each cycle: scale `1 / 2^(cycle - 1)`.
    Triangular2,
    /// A triangle whose amplitude decays each iteration: scale `exp_gamma^iterations`.
    ExpRange,
}

impl Mode {
    /// The name Paddle and PyTorch use.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Triangular => "triangular",
            Mode::Triangular2 => "triangular2",
            Mode::ExpRange => "exp_range",
        }
    }
}

impl FromStr for Mode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "triangular" => Ok(Mode::Triangular),
            "triangular2" => Ok(Mode::Triangular2),
            "exp_range" => Ok(Mode::ExpRange),
            _ => Err(Error::Unknown {
                parameter: "mode",
                value: s.to_owned(),
                expected: "triangular, triangular2, exp_range",
            }),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a scale function is evaluated on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ScaleMode {
    /// The cycle number, from 1.
    #[default]
    Cycle,
    /// The iteration (epoch) count since the start of training.
    Iterations,
}

impl ScaleMode {
    /// The name Paddle and PyTorch use.
    pub fn as_str(self) -> &'static str {
        match self {
            ScaleMode::Cycle => "cycle",
            ScaleMode::Iterations => "iterations",
        }
    }
}

impl FromStr for ScaleMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "cycle" => Ok(ScaleMode::Cycle),
            "iterations" => Ok(ScaleMode::Iterations),
            _ => Err(Error::Unknown {
                parameter: "scale_mode",
                value: s.to_owned(),
                expected: "cycle, iterations",
            }),
        }
    }
}

impl fmt::Display for ScaleMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A custom amplitude scaling, Paddle's and PyTorch's `scale_fn`: it must return a number in
/// [0, 1] for every argument >= 0 (checked on each use).
#[derive(Clone)]
pub struct ScaleFn(Arc<dyn Fn(f64) -> f64 + Send + Sync>);

impl ScaleFn {
    /// Wraps a closure.
    pub fn new(f: impl Fn(f64) -> f64 + Send + Sync + 'static) -> Self {
        ScaleFn(Arc::new(f))
    }

    /// Evaluates the function at `x`, refusing a value outside [0, 1].
    ///
    /// # Errors
    /// [`Error::ScaleFn`] for a value outside [0, 1], NaN included.
    pub fn eval(&self, x: f64) -> Result<f64, Error> {
        let value = (self.0)(x);
        if (0.0..=1.0).contains(&value) {
            Ok(value)
        } else {
            Err(Error::ScaleFn { x, value })
        }
    }
}

impl fmt::Debug for ScaleFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ScaleFn(..)")
    }
}

/// How the amplitude is scaled, once `mode`, `scale_fn` and `scale_mode` are resolved.
#[derive(Clone, Debug)]
pub enum Scale {
    /// `1`.
    Triangular,
    /// `1 / 2^(cycle - 1)`.
    Triangular2,
    /// `gamma^iterations`.
    ExpRange { gamma: f64 },
    /// A user function of the cycle or of the iterations.
    Custom {
        scale_fn: ScaleFn,
        scale_mode: ScaleMode,
    },
}

impl Scale {
    /// Resolves the scaling as Paddle does: a `scale_fn` wins over `mode` and keeps
    /// `scale_mode`; each built-in mode brings its own scale mode.
    pub fn new(
        mode: Mode,
        exp_gamma: f64,
        scale_fn: Option<ScaleFn>,
        scale_mode: ScaleMode,
    ) -> Self {
        match (scale_fn, mode) {
            (Some(scale_fn), _) => Scale::Custom {
                scale_fn,
                scale_mode,
            },
            (None, Mode::Triangular) => Scale::Triangular,
            (None, Mode::Triangular2) => Scale::Triangular2,
            (None, Mode::ExpRange) => Scale::ExpRange { gamma: exp_gamma },
        }
    }

    /// The scale mode in force.
    pub fn scale_mode(&self) -> ScaleMode {
        match self {
            Scale::Triangular | Scale::Triangular2 => ScaleMode::Cycle,
            Scale::ExpRange { .. } => ScaleMode::Iterations,
            Scale::Custom { scale_mode, .. } => *scale_mode,
        }
    }

    fn eval(&self, cycle: f64, iterations: f64) -> Result<f64, Error> {
        match self {
            Scale::Triangular => Ok(1.0),
            Scale::Triangular2 => Ok(triangular2_scale(cycle)),
            // Python's `gamma ** it` is C's pow on the int converted to float, as here.
            Scale::ExpRange { gamma } => Ok(gamma.powf(iterations)),
            Scale::Custom {
                scale_fn,
                scale_mode,
            } => scale_fn.eval(match scale_mode {
                ScaleMode::Cycle => cycle,
                ScaleMode::Iterations => iterations,
            }),
        }
    }
}

/// Paddle's `1 / (2.0 ** (cycle - 1))`. The power is exact for every cycle, so it is built
/// from its exponent bits. Past cycle 1024 the power overflows and Paddle and PyTorch raise
/// `OverflowError` (pytorch/pytorch#52989); the scale's limit there is 0.
fn triangular2_scale(cycle: f64) -> f64 {
    let halvings = cycle - 1.0;
    if halvings >= 1024.0 {
        return 0.0;
    }
    // 0 <= halvings <= 1023: 2^halvings is a normal f64 with biased exponent halvings + 1023.
    let power = f64::from_bits(((halvings as u64) + 1023) << 52);
    1.0 / power
}

/// Where an epoch falls: the triangle's height there (`scale_factor`, from 0 at the cycle's
/// start to 1 at its peak) and the amplitude's scale (`scale`, in [0, 1]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Phase {
    pub scale_factor: f64,
    pub scale: f64,
}

impl Phase {
    /// The learning rate between `base` and `max` at this phase:
    /// `base + (max - base) * scale_factor * scale`, as Paddle and PyTorch evaluate it.
    #[inline]
    pub fn learning_rate(self, base: f64, max: f64) -> f64 {
        base + (max - base) * self.scale_factor * self.scale
    }

    /// The momentum at this phase, moving opposite to the learning rate (PyTorch's
    /// `max_momentum - (max_momentum - base_momentum) * scale_factor * scale`).
    #[inline]
    pub fn momentum(self, base: f64, max: f64) -> f64 {
        max - (max - base) * self.scale_factor * self.scale
    }
}

/// The shape of a cyclical schedule: cycle lengths and amplitude scaling.
#[derive(Clone, Debug)]
pub struct Schedule {
    step_size_up: u64,
    step_size_down: u64,
    cycle_size: f64,
    step_up_pct: f64,
    scale: Scale,
}

impl Schedule {
    /// A schedule rising for `step_size_up` steps and falling for `step_size_down`.
    ///
    /// # Errors
    /// [`Error::ZeroStepSize`] for a zero step size, [`Error::CycleTooLong`] for a cycle over
    /// 2^53 steps, [`Error::ExpGamma`] for an exp_range `gamma` outside (0, 1].
    pub fn new(step_size_up: u64, step_size_down: u64, scale: Scale) -> Result<Self, Error> {
        if step_size_up == 0 {
            return Err(Error::ZeroStepSize {
                parameter: "step_size_up",
            });
        }
        if step_size_down == 0 {
            return Err(Error::ZeroStepSize {
                parameter: "step_size_down",
            });
        }
        step_size_up
            .checked_add(step_size_down)
            .filter(|&steps| steps <= 1 << 53)
            .ok_or(Error::CycleTooLong {
                step_size_up,
                step_size_down,
            })?;
        if let Scale::ExpRange { gamma } = scale {
            if !(gamma > 0.0 && gamma <= 1.0) {
                return Err(Error::ExpGamma { value: gamma });
            }
        }
        // Paddle: `step_size_up = float(step_size_up)`, `cycle_size = up + down`,
        // `step_up_pct = up / cycle_size`; both sizes are exact as f64 here.
        let cycle_size = step_size_up as f64 + step_size_down as f64;
        Ok(Schedule {
            step_size_up,
            step_size_down,
            cycle_size,
            step_up_pct: step_size_up as f64 / cycle_size,
            scale,
        })
    }

    pub fn step_size_up(&self) -> u64 {
        self.step_size_up
    }

    pub fn step_size_down(&self) -> u64 {
        self.step_size_down
    }

    pub fn scale(&self) -> &Scale {
        &self.scale
    }

    /// The phase at `epoch` (0..=[`MAX_EPOCH`]).
    ///
    /// # Errors
    /// [`Error::Epoch`] outside that range; [`Error::ScaleFn`] when a custom scale function
    /// leaves [0, 1].
    #[inline]
    pub fn phase(&self, epoch: i64) -> Result<Phase, Error> {
        if !(0..=MAX_EPOCH).contains(&epoch) {
            return Err(Error::Epoch {
                parameter: "epoch",
                value: epoch,
                min: 0,
                max: MAX_EPOCH,
            });
        }
        let iterations = epoch as f64;
        let quotient = iterations / self.cycle_size;
        // Python's `it // cycle_size` on exact integers is the integer quotient n, and so is
        // the rounded quotient truncated, for every epoch below 2^53: a quotient q that is not
        // an integer lies at least 1/cycle_size below n + 1, more than half an ulp of q
        // (q * 2^-53) while it < 2^53, so rounding never reaches n + 1. This saves an integer
        // division per step.
        let cycle = 1.0 + (quotient as i64) as f64;
        let pct = 1.0 + quotient - cycle;
        let scale_factor = if pct <= self.step_up_pct {
            pct / self.step_up_pct
        } else {
            (1.0 - pct) / (1.0 - self.step_up_pct)
        };
        let scale = self.scale.eval(cycle, iterations)?;
        Ok(Phase {
            scale_factor,
            scale,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The truncated f64 quotient is Python's `it // cycle_size` (the integer quotient) for
    /// every accepted epoch: checked at and around every multiple of the cycle near 0, 2^52
    /// and 2^53, where rounding is coarsest, and for cycle sizes up to 2^53.
    #[test]
    fn truncated_quotient_is_the_integer_quotient() {
        let cycles = (1..=300).chain([1023, 1024, 1025, 4096, 99_991]).chain([
            (1 << 26) + 1,
            1 << 40,
            (1 << 52) - 1,
            1 << 52,
            (1 << 53) - 1,
            1 << 53,
        ]);
        for cycle in cycles {
            let cycle_size = cycle as f64;
            for anchor in [0, 1 << 52, MAX_EPOCH] {
                let base = (anchor / cycle) * cycle;
                for delta in -3..=3 {
                    for start in [base - cycle, base, base + cycle] {
                        let epoch = start + delta;
                        if !(0..=MAX_EPOCH).contains(&epoch) {
                            continue;
                        }
                        let truncated = (epoch as f64 / cycle_size) as i64;
                        assert_eq!(truncated, epoch / cycle, "epoch {epoch}, cycle {cycle}");
                    }
                }
            }
        }
    }

    #[test]
    fn triangular2_scale_is_python_power_of_two() {
        for cycle in 1..=1024 {
            let python = 1.0 / 2f64.powi(cycle - 1);
            assert_eq!(
                triangular2_scale(cycle as f64).to_bits(),
                python.to_bits(),
                "cycle {cycle}"
            );
        }
        assert_eq!(triangular2_scale(1025.0), 0.0);
        assert_eq!(triangular2_scale(1e15), 0.0);
    }
}
