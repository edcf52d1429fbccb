//! The scheduler reaches libtorch: the rates and momenta it sets are the ones a tch optimizer
//! steps with, and whatever it refuses leaves both the scheduler and the optimizer as they were.
//!
//! How tch 0.26 (libtorch 2.13) takes a momentum, measured on CPU:
//! - `set_momentum(m)` sets SGD's and RMSprop's momentum, and Adam's and AdamW's beta1, in every
//!   parameter group. On an SGD built with momentum 0 it takes effect: libtorch's SGD creates
//!   its momentum buffer at the first step that has a momentum (see
//!   `sgd_built_without_momentum_takes_a_cycled_momentum`).
//! - `set_momentum_group(g, m)` works on SGD only. On Adam and AdamW it sets group g's beta1,
//!   on RMSprop group g's momentum, and then panics ("unexpected optimizer": the C++ shim
//!   lacks an `else` before its SGD case), so a caller that caught the panic would find the
//!   value set anyway.
//! - libtorch's RMSprop creates a parameter's momentum buffer at that parameter's first step
//!   only when the momentum is above 0 then; after a first step with momentum 0 (an RMSprop
//!   built with momentum 0, say), every step with a momentum above 0 panics ("Expected a
//!   proper Tensor but got None"). Setting the momentum before the first step avoids it.
//! - A group index past the last group panics in every setter (`vector::_M_range_check`).
//!   libtorch's optimizer always has group 0, even without variables; a variable created in a
//!   new group after the optimizer was built reaches it only at its next step.

use anyhow::{Result, ensure};
use cyclic_lr::{CyclicLr, CyclicLrConfig, Error, LearningRateTarget, State, TchOptimizer};
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// A model with one weight vector per parameter group and a linear loss, so the gradient of
/// each weight is a constant: powers of two, so that `lr * gradient` is exact and an update
/// `p - lr * gradient` rounds once, whether libtorch fuses it into an FMA or not.
struct Model {
    vs: nn::VarStore,
    weights: Vec<Tensor>,
}

const WEIGHTS: [&[f64]; 4] = [&[1.0, -3.0, 0.25], &[2.0, 0.5], &[-1.5], &[0.75, 4.0]];
const GRADIENTS: [&[f64]; 4] = [&[0.5, 2.0, -1.0], &[4.0, -0.25], &[8.0], &[-0.5, 1.0]];

impl Model {
    fn new(groups: usize) -> Model {
        let mut vs = nn::VarStore::new(Device::Cpu);
        vs.set_kind(Kind::Double);
        let weights = (0..groups)
            .map(|g| {
                vs.root()
                    .set_group(g)
                    .var_copy(&format!("w{g}"), &Tensor::from_slice(WEIGHTS[g]))
            })
            .collect();
        Model { vs, weights }
    }

    fn loss(&self) -> Tensor {
        let mut loss = Tensor::zeros([], (Kind::Double, Device::Cpu));
        for (g, w) in self.weights.iter().enumerate() {
            loss += (w * Tensor::from_slice(GRADIENTS[g])).sum(Kind::Double);
        }
        loss
    }

    fn params(&self) -> Result<Vec<Vec<f64>>> {
        self.weights
            .iter()
            .map(|w| Ok(Vec::<f64>::try_from(w)?))
            .collect()
    }
}

/// The parameters after one plain SGD step with these group rates: `p - lr * gradient`.
fn sgd_update(params: &[Vec<f64>], lrs: &[f64]) -> Vec<Vec<f64>> {
    params
        .iter()
        .enumerate()
        .map(|(g, p)| {
            p.iter()
                .zip(GRADIENTS[g])
                .map(|(p, grad)| p + -lrs[g] * grad)
                .collect()
        })
        .collect()
}

fn bits(params: &[Vec<f64>]) -> Vec<Vec<u64>> {
    params
        .iter()
        .map(|p| p.iter().map(|x| x.to_bits()).collect())
        .collect()
}

fn two_groups() -> CyclicLrConfig {
    CyclicLrConfig::new(vec![0.1, 0.01], vec![1.0, 0.5], 3).with_step_size_down(5)
}

#[test]
fn per_group_rates_reach_sgd_exactly() -> Result<()> {
    let model = Model::new(2);
    let mut scheduler = two_groups().init()?;
    let mut opt = TchOptimizer::new(nn::Sgd::default(), &model.vs, scheduler.last_lr())?;
    scheduler.apply(&mut opt)?;
    for _ in 0..12 {
        let expected = sgd_update(&model.params()?, scheduler.last_lrs());
        opt.backward_step(&model.loss());
        ensure!(
            bits(&model.params()?) == bits(&expected),
            "epoch {}: {:?}, expected {expected:?}",
            scheduler.last_epoch(),
            model.params()?
        );
        scheduler.step_with(&mut opt)?;
    }
    Ok(())
}

#[test]
fn shared_rate_reaches_plain_optimizer_exactly() -> Result<()> {
    let model = Model::new(2);
    let mut scheduler = CyclicLrConfig::new(0.5, 1.0, 15)
        .with_step_size_down(5)
        .init()?;
    let mut opt = nn::Sgd::default().build(&model.vs, scheduler.last_lr())?;
    for _ in 0..25 {
        let lr = scheduler.last_lr();
        let expected = sgd_update(&model.params()?, &[lr, lr]);
        opt.backward_step(&model.loss());
        ensure!(bits(&model.params()?) == bits(&expected));
        scheduler.step_with(&mut opt)?;
    }
    Ok(())
}

/// libtorch's SGD with momentum m: `buf = g` at the first step, then `buf = m * buf + g`;
/// `p -= lr * buf`. With a power-of-two gradient `m * g` is exact, but `lr * buf` is not, so
/// the update rounds once (fused) or twice: either is libtorch's.
fn sgd_momentum_update(p: f64, lr: f64, buf: f64) -> [f64; 2] {
    [p + -lr * buf, (-lr).mul_add(buf, p)]
}

fn check_sgd_momentum_steps(
    model: &Model,
    scheduler: &mut CyclicLr,
    opt: &mut TchOptimizer,
) -> Result<()> {
    let groups = model.weights.len();
    let mut buffers: Vec<Vec<f64>> = (0..groups).map(|g| GRADIENTS[g].to_vec()).collect();
    for step in 0..10 {
        let before = model.params()?;
        let lrs = scheduler.last_lrs().to_vec();
        let momentums = scheduler.last_momentums().to_vec();
        if step > 0 {
            for (g, buffer) in buffers.iter_mut().enumerate() {
                let m = momentums[g.min(momentums.len() - 1)];
                for (b, grad) in buffer.iter_mut().zip(GRADIENTS[g]) {
                    *b = m * *b + grad;
                }
            }
        }
        opt.backward_step(&model.loss());
        let after = model.params()?;
        for g in 0..groups {
            let lr = lrs[g.min(lrs.len() - 1)];
            for i in 0..after[g].len() {
                let allowed = sgd_momentum_update(before[g][i], lr, buffers[g][i]);
                ensure!(
                    allowed.contains(&after[g][i]),
                    "step {step}, group {g}: {} not in {allowed:?}",
                    after[g][i]
                );
            }
        }
        scheduler.step_with(opt)?;
    }
    Ok(())
}

#[test]
fn sgd_built_without_momentum_takes_a_cycled_momentum() -> Result<()> {
    let model = Model::new(2);
    let mut scheduler = CyclicLrConfig::new(0.1, 1.0, 3)
        .with_cycle_momentum(true)
        .init()?;
    let mut opt = TchOptimizer::new(nn::Sgd::default(), &model.vs, scheduler.last_lr())?;
    scheduler.apply(&mut opt)?;
    check_sgd_momentum_steps(&model, &mut scheduler, &mut opt)
}

#[test]
fn sgd_takes_a_momentum_per_group() -> Result<()> {
    let model = Model::new(2);
    let mut scheduler = two_groups()
        .with_cycle_momentum(true)
        .with_base_momentum(vec![0.8, 0.5])
        .with_max_momentum(vec![0.9, 0.75])
        .init()?;
    let momentum = nn::Sgd {
        momentum: 0.9,
        ..Default::default()
    };
    let mut opt = TchOptimizer::new(momentum, &model.vs, scheduler.last_lr())?;
    scheduler.apply(&mut opt)?;
    check_sgd_momentum_steps(&model, &mut scheduler, &mut opt)
}

/// Steps an optimizer driven by the scheduler and one whose momentum is set by hand to the
/// scheduler's values with `set_momentum`, which sets beta1 on Adam: the same parameters, to
/// the bit; and different ones from an optimizer whose momentum is left alone.
fn check_momentum_is_set<C: cyclic_lr::KnownOptimizer + Copy>(config: C) -> Result<()> {
    let cycling = CyclicLrConfig::new(0.1, 1.0, 3)
        .with_cycle_momentum(true)
        .with_base_momentum(0.5)
        .with_max_momentum(0.95);
    let (driven, by_hand, untouched) = (Model::new(2), Model::new(2), Model::new(2));
    let mut scheduler = cycling.clone().init()?;
    let mut reference = cycling.init()?;
    let mut opt = TchOptimizer::new(config, &driven.vs, scheduler.last_lr())?;
    let mut manual = config.build(&by_hand.vs, reference.last_lr())?;
    let mut plain = config.build(&untouched.vs, reference.last_lr())?;
    scheduler.apply(&mut opt)?;
    manual.set_momentum(reference.last_momentums()[0]);
    for _ in 0..8 {
        opt.backward_step(&driven.loss());
        manual.backward_step(&by_hand.loss());
        plain.backward_step(&untouched.loss());
        scheduler.step_with(&mut opt)?;
        let lr = reference.step()?;
        manual.set_lr(lr);
        manual.set_momentum(reference.last_momentums()[0]);
        plain.set_lr(lr);
    }
    ensure!(bits(&driven.params()?) == bits(&by_hand.params()?));
    ensure!(bits(&driven.params()?) != bits(&untouched.params()?));
    Ok(())
}

#[test]
fn adam_takes_a_cycled_beta1() -> Result<()> {
    check_momentum_is_set(nn::Adam::default())
}

#[test]
fn adamw_takes_a_cycled_beta1() -> Result<()> {
    check_momentum_is_set(nn::AdamW::default())
}

#[test]
fn rmsprop_with_momentum_takes_a_cycled_momentum() -> Result<()> {
    check_momentum_is_set(nn::RmsProp {
        momentum: 0.9,
        ..Default::default()
    })
}

#[test]
fn sgd_takes_a_cycled_momentum() -> Result<()> {
    check_momentum_is_set(nn::Sgd {
        momentum: 0.9,
        ..Default::default()
    })
}

/// The scheduler's state, and the rate its optimizer steps with (seen in one SGD step).
fn check_refused<T: LearningRateTarget>(
    model: &Model,
    scheduler: &mut CyclicLr,
    (opt, backward_step): (&mut T, fn(&mut T, &Tensor)),
    lr_in_optimizer: f64,
    expected: &Error,
) -> Result<()> {
    let before: State = scheduler.state_dict();
    let result = scheduler.step_with(opt);
    ensure!(result.as_ref() == Err(expected), "{result:?}");
    ensure!(scheduler.apply(opt).as_ref() == Err(expected));
    ensure!(scheduler.state_dict() == before);
    let groups = model.weights.len();
    let expected = sgd_update(&model.params()?, &vec![lr_in_optimizer; groups]);
    backward_step(opt, &model.loss());
    ensure!(bits(&model.params()?) == bits(&expected));
    Ok(())
}

#[test]
fn per_group_schedule_on_plain_optimizer_is_refused() -> Result<()> {
    let model = Model::new(2);
    let mut scheduler = two_groups().init()?;
    let mut opt = nn::Sgd::default().build(&model.vs, 0.25)?;
    check_refused(
        &model,
        &mut scheduler,
        (&mut opt, |opt, loss| opt.backward_step(loss)),
        0.25,
        &Error::UnknownGroups { scheduled: 2 },
    )
}

#[test]
fn group_count_mismatch_is_refused() -> Result<()> {
    let model = Model::new(2);
    let mut scheduler = CyclicLrConfig::new(vec![0.1, 0.2, 0.3], 1.0, 3).init()?;
    let mut opt = TchOptimizer::new(nn::Sgd::default(), &model.vs, 0.25)?;
    check_refused(
        &model,
        &mut scheduler,
        (&mut opt, |opt, loss| opt.backward_step(loss)),
        0.25,
        &Error::GroupCount {
            scheduled: 3,
            optimizer: 2,
        },
    )
}

#[test]
fn adam_per_group_momentum_is_refused() -> Result<()> {
    check_per_group_momentum_refused(nn::Adam::default(), "Adam")
}

#[test]
fn adamw_per_group_momentum_is_refused() -> Result<()> {
    check_per_group_momentum_refused(nn::AdamW::default(), "AdamW")
}

#[test]
fn rmsprop_per_group_momentum_is_refused() -> Result<()> {
    let momentum = nn::RmsProp {
        momentum: 0.9,
        ..Default::default()
    };
    check_per_group_momentum_refused(momentum, "RMSprop")
}

fn check_per_group_momentum_refused<C: cyclic_lr::KnownOptimizer>(
    config: C,
    name: &'static str,
) -> Result<()> {
    let model = Model::new(2);
    let mut scheduler = two_groups()
        .with_cycle_momentum(true)
        .with_base_momentum(vec![0.8, 0.5])
        .init()?;
    let mut opt = TchOptimizer::new(config, &model.vs, 0.25)?;
    let before = scheduler.state_dict();
    let result = scheduler.step_with(&mut opt);
    ensure!(
        matches!(
            &result,
            Err(Error::MomentumUnsupported { optimizer, .. }) if *optimizer == name
        ),
        "{result:?}"
    );
    ensure!(scheduler.state_dict() == before);
    Ok(())
}

#[test]
fn rmsprop_built_without_momentum_refuses_momentum_cycling() -> Result<()> {
    let model = Model::new(1);
    let mut scheduler = CyclicLrConfig::new(0.1, 1.0, 3)
        .with_cycle_momentum(true)
        .init()?;
    let mut opt = TchOptimizer::new(nn::RmsProp::default(), &model.vs, 0.1)?;
    let before = scheduler.state_dict();
    ensure!(
        scheduler.step_with(&mut opt)
            == Err(Error::MomentumUnsupported {
                optimizer: "RMSprop built with momentum 0",
                reason: "it has no momentum"
            })
    );
    ensure!(scheduler.state_dict() == before);
    // The optimizer is untouched, so it keeps training.
    opt.backward_step(&model.loss());
    opt.backward_step(&model.loss());
    Ok(())
}

#[test]
fn group_created_after_the_optimizer_counts_once_it_stepped() -> Result<()> {
    let model = Model::new(1);
    let mut opt = TchOptimizer::new(nn::Sgd::default(), &model.vs, 0.25)?;
    let late = model
        .vs
        .root()
        .set_group(1)
        .var_copy("late", &Tensor::from_slice(&[1.0f64]));
    let scheduler = two_groups().init()?;
    // libtorch's optimizer has no group 1 yet: setting its rate would panic.
    ensure!(
        scheduler.apply(&mut opt)
            == Err(Error::GroupCount {
                scheduled: 2,
                optimizer: 1
            })
    );
    opt.backward_step(&(model.loss() + late.sum(Kind::Double)));
    scheduler.apply(&mut opt)?;
    let before = Vec::<f64>::try_from(&late)?;
    opt.backward_step(&(model.loss() + late.sum(Kind::Double)));
    let after = Vec::<f64>::try_from(&late)?;
    ensure!(after[0] == before[0] - scheduler.last_lrs()[1]);
    Ok(())
}

#[test]
fn optimizer_without_variables_has_one_group() -> Result<()> {
    let vs = nn::VarStore::new(Device::Cpu);
    let mut opt = TchOptimizer::new(nn::Sgd::default(), &vs, 0.25)?;
    ensure!(opt.group_count() == Some(1));
    let mut scheduler = CyclicLrConfig::new(vec![0.1], vec![1.0], 3).init()?;
    scheduler.step_with(&mut opt)?;
    Ok(())
}

#[test]
fn momentum_cycling_runs_long_on_every_optimizer_kind() -> Result<()> {
    let model = Model::new(2);
    let cycling = CyclicLrConfig::new(1e-3, 1e-2, 4).with_cycle_momentum(true);
    let rmsprop = nn::RmsProp {
        momentum: 0.9,
        ..Default::default()
    };
    let mut optimizers = vec![
        TchOptimizer::new(nn::Sgd::default(), &model.vs, 1e-3)?,
        TchOptimizer::new(nn::Adam::default(), &model.vs, 1e-3)?,
        TchOptimizer::new(nn::AdamW::default(), &model.vs, 1e-3)?,
        TchOptimizer::new(rmsprop, &model.vs, 1e-3)?,
    ];
    for opt in &mut optimizers {
        let mut scheduler = cycling.clone().init()?;
        scheduler.apply(opt)?;
        for _ in 0..40 {
            opt.backward_step(&model.loss());
            scheduler.step_with(opt)?;
        }
    }
    Ok(())
}

#[test]
fn momentum_cycling_on_plain_optimizer_is_refused() -> Result<()> {
    // A plain optimizer could be an RMSprop built with momentum 0, which libtorch fails at the
    // first step after a momentum is set: only a TchOptimizer, which knows, is given one.
    let model = Model::new(1);
    let mut scheduler = CyclicLrConfig::new(0.1, 1.0, 3)
        .with_cycle_momentum(true)
        .init()?;
    let mut opt = nn::RmsProp::default().build(&model.vs, 0.25)?;
    let before = scheduler.state_dict();
    let result = scheduler.step_with(&mut opt);
    ensure!(
        matches!(
            &result,
            Err(Error::MomentumUnsupported {
                optimizer: "tch::nn::Optimizer",
                ..
            })
        ),
        "{result:?}"
    );
    ensure!(scheduler.state_dict() == before);
    opt.backward_step(&model.loss());
    opt.backward_step(&model.loss());
    Ok(())
}

#[test]
fn rmsprop_momentum_reaching_zero_is_refused() -> Result<()> {
    // At the peak the momentum is max - (max - base): 0 for a base of 0, and, rounded, for a
    // base below half an ulp of the max.
    let model = Model::new(1);
    for base_momentum in [0.0, 1e-300] {
        let mut scheduler = CyclicLrConfig::new(0.1, 1.0, 3)
            .with_cycle_momentum(true)
            .with_base_momentum(base_momentum)
            .init()?;
        let rmsprop = nn::RmsProp {
            momentum: 0.9,
            ..Default::default()
        };
        let mut opt = TchOptimizer::new(rmsprop, &model.vs, 0.1)?;
        let result = scheduler.step_with(&mut opt);
        ensure!(
            matches!(
                &result,
                Err(Error::MomentumUnsupported {
                    optimizer: "RMSprop",
                    ..
                })
            ),
            "{result:?}"
        );
    }
    Ok(())
}

#[test]
fn rmsprop_momentum_tiny_but_above_zero_is_accepted() -> Result<()> {
    let model = Model::new(1);
    let mut scheduler = CyclicLrConfig::new(0.1, 1.0, 3)
        .with_cycle_momentum(true)
        .with_base_momentum(1e-6)
        .init()?;
    let rmsprop = nn::RmsProp {
        momentum: 0.9,
        ..Default::default()
    };
    let mut opt = TchOptimizer::new(rmsprop, &model.vs, 0.1)?;
    for _ in 0..10 {
        opt.backward_step(&model.loss());
        scheduler.step_with(&mut opt)?;
    }
    Ok(())
}
