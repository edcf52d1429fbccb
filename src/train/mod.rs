//! The seed's training loops (Paddle's CyclicLR examples), shared by `examples/` and `tests/`
//! so that what the tests check is what the examples run.

pub mod checkpoint;
pub mod dynamic;
pub mod static_graph;

use std::fmt;

use tch::nn::VarStore;

use crate::CyclicLr;
use crate::pyfmt::PyFloat;

/// The sum of every parameter of `vs`, as `f64`: a fingerprint of the weights.
pub fn parameter_checksum(vs: &VarStore) -> f64 {
    tch::no_grad(|| {
        vs.trainable_variables()
            .iter()
            .map(|t| {
                t.to_kind(tch::Kind::Double)
                    .sum(tch::Kind::Double)
                    .double_value(&[])
            })
            .sum()
    })
}

/// The last line of a training run:
/// `final step=<n> lr=<lr> loss=<last loss> checksum=<sum of all parameters>`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Scheduler steps taken (the scheduler's `last_epoch`).
    pub step: i64,
    pub lr: f64,
    pub loss: f64,
    pub checksum: f64,
}

impl Summary {
    /// The summary of a run that ended with `loss`, its scheduler and its weights as they are.
    pub fn of(scheduler: &CyclicLr, loss: f64, vs: &VarStore) -> Self {
        Summary {
            step: scheduler.last_epoch(),
            lr: scheduler.last_lr(),
            loss,
            checksum: parameter_checksum(vs),
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "final step={} lr={} loss={} checksum={}",
            self.step,
            PyFloat(self.lr),
            PyFloat(self.loss),
            PyFloat(self.checksum)
        )
    }
}

/// The line printed after each epoch: `epoch <e> loss=<mean loss> lr=<current lr>`.
pub fn epoch_line(epoch: usize, mean_loss: f64, lr: f64) -> String {
    format!(
        "epoch {epoch} loss={} lr={}",
        PyFloat(mean_loss),
        PyFloat(lr)
    )
}

/// A standard normal draw by Box-Muller (rand 0.9 itself has no normal distribution).
pub fn standard_normal(rng: &mut impl rand::Rng) -> f64 {
    // 1 - [0, 1) is (0, 1]: the logarithm stays finite.
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
