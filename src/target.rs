//! What a scheduler drives: anything whose learning rate can be set, and the adapters for
//! tch's optimizers.
//!
//! tch 0.26's optimizer setters `unwrap()` libtorch's result, so a bad call panics: a group
//! index past the last group libtorch's optimizer holds (`vector::_M_range_check`), or
//! `set_momentum_group` on anything but SGD (tch's C++ shim sets the group's beta1 or
//! momentum, then falls through to "unexpected optimizer" on Adam, AdamW and RMSprop alike).
//! And libtorch's RMSprop creates its momentum buffer at its first step only if its momentum
//! is then above 0: one built with momentum 0 panics at the first step after a momentum is
//! set. The scheduler asks a target what it supports before calling any setter, so none of
//! this can happen.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

use tch::Tensor;
use tch::nn::{self, OptimizerConfig, VarStore, Variables};

use crate::error::Error;

/// How a target's momentum can be set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MomentumSupport {
    /// Not at all.
    None { optimizer: &'static str },
    /// Not safely: the optimizer's kind is unknown, and an RMSprop built with momentum 0 fails
    /// at the first step after its momentum is set.
    UnknownKind { optimizer: &'static str },
    /// For all parameter groups at once.
    AllGroups { optimizer: &'static str },
    /// For all parameter groups at once, and only above 0: libtorch's RMSprop gives a
    /// parameter a momentum buffer only if its first step has a momentum, and fails every later
    /// step with a momentum on a parameter without one.
    AllGroupsAboveZero { optimizer: &'static str },
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

/// A plain tch optimizer cannot tell its groups or its kind: the scheduler sets one learning
/// rate for all its groups, and refuses a per-group schedule and momentum cycling. Wrap it in
/// [`TchOptimizer`] for either.
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
        MomentumSupport::UnknownKind {
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

    /// Whether an optimizer built from this configuration can have its momentum set (true
    /// unless said otherwise).
    fn takes_momentum(&self) -> bool {
        true
    }
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

    /// libtorch's RMSprop allocates a parameter's momentum buffer at that parameter's first
    /// step only when the momentum is above 0 then, and fails every later step that finds a
    /// momentum above 0 without the buffer. Built with a momentum above 0, its first step has
    /// one (and a schedule whose momentum can reach 0 is refused).
    fn takes_momentum(&self) -> bool {
        self.momentum > 0.0
    }
}

/// A `tch::nn::Optimizer` that knows its kind and its parameter groups, so that a scheduler
/// can set rates and momenta group by group without ever reaching a panicking setter.
/// Dereferences to the optimizer: `opt.backward_step(&loss)` works as before. Its own `step`,
/// `zero_grad` and `backward_step*` also note the variables tch hands libtorch on the way, so
/// that groups of variables created after the optimizer count once it has stepped.
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
    takes_momentum: bool,
    variables: Arc<Mutex<Variables>>,
    /// How many of the store's trainable variables libtorch's optimizer surely holds: those
    /// there when it was built or when it last stepped through this wrapper. (tch hands it
    /// the newer ones at its next step, which may open new groups.)
    in_optimizer: usize,
}

impl TchOptimizer {
    /// Builds the optimizer over `vs`'s trainable variables with learning rate `lr`.
    ///
    /// # Errors
    /// [`Error::Torch`] when libtorch refuses to build it.
    pub fn new<C: KnownOptimizer>(config: C, vs: &VarStore, lr: f64) -> Result<Self, Error> {
        let takes_momentum = config.takes_momentum();
        let mut optimizer = TchOptimizer {
            optimizer: config.build(vs, lr)?,
            kind: C::KIND,
            takes_momentum,
            variables: vs.variables_.clone(),
            in_optimizer: 0,
        };
        optimizer.synced();
        Ok(optimizer)
    }

    /// Records that tch has just handed every trainable variable to libtorch.
    fn synced(&mut self) {
        if let Ok(variables) = self.variables.lock() {
            self.in_optimizer = variables.trainable_variables.len();
        }
    }

    /// `nn::Optimizer::zero_grad`, noting the variables it adds to the optimizer.
    pub fn zero_grad(&mut self) {
        self.optimizer.zero_grad();
        self.synced();
    }

    /// `nn::Optimizer::step`, noting the variables it adds to the optimizer.
    pub fn step(&mut self) {
        self.optimizer.step();
        self.synced();
    }

    /// `nn::Optimizer::backward_step`, noting the variables it adds to the optimizer.
    pub fn backward_step(&mut self, loss: &Tensor) {
        self.optimizer.backward_step(loss);
        self.synced();
    }

    /// `nn::Optimizer::backward_step_clip`, noting the variables it adds to the optimizer.
    pub fn backward_step_clip(&mut self, loss: &Tensor, max: f64) {
        self.optimizer.backward_step_clip(loss, max);
        self.synced();
    }

    /// `nn::Optimizer::backward_step_clip_norm`, noting the variables it adds to the
    /// optimizer.
    pub fn backward_step_clip_norm(&mut self, loss: &Tensor, max: f64) {
        self.optimizer.backward_step_clip_norm(loss, max);
        self.synced();
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
    /// libtorch's optimizer has groups 0..=g for the largest group g of the variables it
    /// holds, and group 0 even when it holds none. Variables created after the optimizer are
    /// counted once it has stepped through this wrapper: until tch hands them over, a group
    /// of theirs does not exist in libtorch, and setting its rate would panic.
    fn group_count(&self) -> Option<usize> {
        let variables = self.variables.lock().ok()?;
        let all = &variables.trainable_variables;
        let held = &all[..self.in_optimizer.min(all.len())];
        Some(held.iter().map(|v| v.group + 1).max().unwrap_or(1))
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.optimizer.set_lr(lr);
    }

    fn set_group_learning_rate(&mut self, group: usize, lr: f64) {
        self.optimizer.set_lr_group(group, lr);
    }

    fn momentum_support(&self) -> MomentumSupport {
        if !self.takes_momentum {
            return MomentumSupport::None {
                optimizer: match self.kind {
                    OptimizerKind::RmsProp => "RMSprop built with momentum 0",
                    kind => kind.name(),
                },
            };
        }
        let optimizer = self.kind.name();
        match self.kind {
            OptimizerKind::Sgd => MomentumSupport::PerGroup,
            OptimizerKind::Adam | OptimizerKind::AdamW => MomentumSupport::AllGroups { optimizer },
            OptimizerKind::RmsProp => MomentumSupport::AllGroupsAboveZero { optimizer },
        }
    }

    fn set_momentum(&mut self, momentum: f64) {
        self.optimizer.set_momentum(momentum);
    }

    fn set_group_momentum(&mut self, group: usize, momentum: f64) {
        self.optimizer.set_momentum_group(group, momentum);
    }
}
