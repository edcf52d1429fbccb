//! What a scheduler drives: anything whose learning rate can be set, and the adapters for
//! tch's optimizers.
//!
//! tch 0.26's optimizer setters `unwrap()` libtorch's result, so a bad call panics: a group
//! index past the last group (`vector::_M_range_check`), or `set_momentum_group` on Adam and
//! AdamW (libtorch's C++ shim sets beta1, then falls through to "unexpected optimizer"). The
//! scheduler asks a target what it supports before calling any setter, so neither can happen.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

use tch::nn::{self, OptimizerConfig, VarStore, Variables};

use crate::error::Error;

/// How a target's momentum can be set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MomentumSupport {
    /// Not at all.
    None { optimizer: &'static str },
    /// For all parameter groups at once.
    AllGroups { optimizer: &'static str },
    /// Group by group.
    PerGroup,
}

/// Something whose learning rate (and momentum) a scheduler can set.
///
/// The scheduler calls the group setters only with groups below
/// [`group_count`](Self::group_count), and the momentum setters only as
/// [`momentum_support`](Self::momentum_support) allows.
pub trait LearningRateTarget {
    /// How many parameter groups there are, where that can be known.
    fn group_count(&self) -> Option<usize>;

    /// Sets the learning rate of every group.
    fn set_learning_rate(&mut self, lr: f64);

    /// Sets the learning rate of one group.
    fn set_group_learning_rate(&mut self, group: usize, lr: f64);

    /// How the momentum can be set.
    fn momentum_support(&self) -> MomentumSupport;

    /// Sets the momentum (Adam's beta1) of every group.
    fn set_momentum(&mut self, momentum: f64);

    /// Sets the momentum of one group.
    fn set_group_momentum(&mut self, group: usize, momentum: f64);
}

/// A plain tch optimizer cannot tell its groups or its kind: the scheduler can set one learning
/// rate and one momentum for all its groups (both safe for every tch optimizer), and refuses a
/// per-group schedule. Wrap it in [`TchOptimizer`] for per-group bounds.
impl LearningRateTarget for nn::Optimizer {
    fn group_count(&self) -> Option<usize> {
        None
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.set_lr(lr);
    }

    fn set_group_learning_rate(&mut self, group: usize, lr: f64) {
        self.set_lr_group(group, lr);
    }

    fn momentum_support(&self) -> MomentumSupport {
        MomentumSupport::AllGroups {
            optimizer: "tch::nn::Optimizer",
        }
    }

    fn set_momentum(&mut self, momentum: f64) {
        nn::Optimizer::set_momentum(self, momentum);
    }

    fn set_group_momentum(&mut self, group: usize, momentum: f64) {
        self.set_momentum_group(group, momentum);
    }
}

/// The optimizer kinds tch builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OptimizerKind {
    Sgd,
    Adam,
    AdamW,
    RmsProp,
}

impl OptimizerKind {
    fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "SGD",
            OptimizerKind::Adam => "Adam",
            OptimizerKind::AdamW => "AdamW",
            OptimizerKind::RmsProp => "RMSprop",
        }
    }
}

/// A tch optimizer configuration whose kind is known.
pub trait KnownOptimizer: OptimizerConfig {
    const KIND: OptimizerKind;
}

impl KnownOptimizer for nn::Sgd {
    const KIND: OptimizerKind = OptimizerKind::Sgd;
}

impl KnownOptimizer for nn::Adam {
    const KIND: OptimizerKind = OptimizerKind::Adam;
}

impl KnownOptimizer for nn::AdamW {
    const KIND: OptimizerKind = OptimizerKind::AdamW;
}

impl KnownOptimizer for nn::RmsProp {
    const KIND: OptimizerKind = OptimizerKind::RmsProp;
}

/// A `tch::nn::Optimizer` that knows its kind and its parameter groups, so that a scheduler
/// can set rates and momenta group by group without ever reaching a panicking setter.
/// Dereferences to the optimizer: `opt.backward_step(&loss)` works as before.
///
/// ```no_run
/// use tch::nn::{self, Module, OptimizerConfig};
/// use cyclic_lr::{CyclicLrConfig, TchOptimizer};
///
/// let vs = nn::VarStore::new(tch::Device::Cpu);
/// let body = nn::linear(vs.root().set_group(0) / "body", 10, 10, Default::default());
/// let head = nn::linear(vs.root().set_group(1) / "head", 10, 1, Default::default());
/// let mut scheduler = CyclicLrConfig::new(vec![0.001, 0.01], vec![0.01, 0.1], 10).init()?;
/// let mut opt = TchOptimizer::new(nn::Sgd::default(), &vs, scheduler.last_lr())?;
/// scheduler.apply(&mut opt)?;
/// # Ok::<(), cyclic_lr::Error>(())
/// ```
#[derive(Debug)]
pub struct TchOptimizer {
    optimizer: nn::Optimizer,
    kind: OptimizerKind,
    variables: Arc<Mutex<Variables>>,
}

impl TchOptimizer {
    /// Builds the optimizer over `vs`'s trainable variables with learning rate `lr`.
    ///
    /// # Errors
    /// [`Error::Torch`] when libtorch refuses to build it.
    pub fn new<C: KnownOptimizer>(config: C, vs: &VarStore, lr: f64) -> Result<Self, Error> {
        Ok(TchOptimizer {
            optimizer: config.build(vs, lr)?,
            kind: C::KIND,
            variables: vs.variables_.clone(),
        })
    }

    /// The optimizer's kind.
    pub fn kind(&self) -> OptimizerKind {
        self.kind
    }

    /// The wrapped optimizer.
    pub fn into_inner(self) -> nn::Optimizer {
        self.optimizer
    }
}

impl Deref for TchOptimizer {
    type Target = nn::Optimizer;

    fn deref(&self) -> &nn::Optimizer {
        &self.optimizer
    }
}

impl DerefMut for TchOptimizer {
    fn deref_mut(&mut self) -> &mut nn::Optimizer {
        &mut self.optimizer
    }
}

impl LearningRateTarget for TchOptimizer {
    /// libtorch makes groups 0..=g for the largest group g of a trainable variable (tch adds
    /// variables created after the optimizer at its next step, as here).
    fn group_count(&self) -> Option<usize> {
        let variables = self.variables.lock().ok()?;
        Some(
            variables
                .trainable_variables
                .iter()
                .map(|v| v.group + 1)
                .max()
                .unwrap_or(0),
        )
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.optimizer.set_lr(lr);
    }

    fn set_group_learning_rate(&mut self, group: usize, lr: f64) {
        self.optimizer.set_lr_group(group, lr);
    }

    fn momentum_support(&self) -> MomentumSupport {
        match self.kind {
            OptimizerKind::Sgd | OptimizerKind::RmsProp => MomentumSupport::PerGroup,
            OptimizerKind::Adam | OptimizerKind::AdamW => MomentumSupport::AllGroups {
                optimizer: self.kind.name(),
            },
        }
    }

    fn set_momentum(&mut self, momentum: f64) {
        self.optimizer.set_momentum(momentum);
    }

    fn set_group_momentum(&mut self, group: usize, momentum: f64) {
        self.optimizer.set_momentum_group(group, momentum);
    }
}
