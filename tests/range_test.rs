//! The LR range test: the sweep, the smoothing, the early stop, the restoring of the weights
//! and the rate, the suggestion rule and the configuration checks.
//!
//! The training problem is SGD on `f(w) = a w²/2` (100 coordinates, averaged) with noise in
//! the gradient, as a minibatch gives: `w ← (1 - lr a) w - lr ξ`, which diverges exactly when
//! `lr > 2/a`, whatever the noise.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};

use anyhow::{Context, bail};
use cyclic_lr::range_test::{
    RangeTestConfig, RangeTestError, RangeTestPoint, StopReason, Suggestion, Sweep,
};
use cyclic_lr::{LearningRateTarget, MomentumSupport};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tch::nn::{self, OptimizerConfig, VarStore};
use tch::{Device, Kind, Tensor};

const COORDINATES: i64 = 100;

/// A VarStore holding `w`, its weights drawn from `seed`.
fn quadratic_weights(seed: u64) -> (VarStore, Tensor) {
    let vs = VarStore::new(Device::Cpu);
    let mut rng = StdRng::seed_from_u64(seed);
    let init: Vec<f32> = (0..COORDINATES)
        .map(|_| rng.random_range(0.5..1.5))
        .collect();
    let w = vs.root().var_copy("w", &Tensor::from_slice(&init));
    (vs, w)
}

/// One SGD step on `a w²/2` with the gradient noise drawn from `rng`; returns `f(w)` before
/// the step.
fn quadratic_step<'a>(
    a: f64,
    w: &'a Tensor,
    rng: &'a mut StdRng,
) -> impl FnMut(&mut nn::Optimizer, f64) -> Result<f64, tch::TchError> + 'a {
    move |opt, _lr| {
        let noise: Vec<f32> = (0..COORDINATES)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let half_a_w2 = w * w * (a / 2.0);
        // Its gradient is a w + ξ.
        let objective = (&half_a_w2 + w * Tensor::from_slice(&noise)).sum(Kind::Float);
        let loss = f64::try_from(half_a_w2.mean(Kind::Float))?;
        opt.backward_step(&objective);
        Ok(loss)
    }
}

/// The range test on the quadratic, with rates from `low` to `high` times the threshold `2/a`.
fn quadratic_test(
    a: f64,
    sweep: Sweep,
    low: f64,
    high: f64,
    seed: u64,
) -> anyhow::Result<cyclic_lr::range_test::RangeTestResult> {
    let (vs, w) = quadratic_weights(seed);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut opt = nn::Sgd::default().build(&vs, 0.01)?;
    let threshold = 2.0 / a;
    let test = RangeTestConfig::new(low * threshold, high * threshold, 100)
        .with_sweep(sweep)
        .init()?;
    Ok(test.run(&vs, &mut opt, 0.01, quadratic_step(a, &w, &mut rng))?)
}

fn bits(t: &Tensor) -> anyhow::Result<Vec<u32>> {
    let values = Vec::<f32>::try_from(t.flatten(0, -1))?;
    Ok(values.iter().map(|v| v.to_bits()).collect())
}

/// A target that records every rate set on it.
#[derive(Default)]
struct Recorder {
    rates: Vec<f64>,
}

impl LearningRateTarget for Recorder {
    fn group_count(&self) -> Option<usize> {
        Some(1)
    }
    fn set_learning_rate(&mut self, lr: f64) {
        self.rates.push(lr);
    }
    fn set_group_learning_rate(&mut self, _group: usize, lr: f64) {
        self.rates.push(lr);
    }
    fn momentum_support(&self) -> MomentumSupport {
        MomentumSupport::PerGroup
    }
    fn set_momentum(&mut self, _momentum: f64) {}
    fn set_group_momentum(&mut self, _group: usize, _momentum: f64) {}
}

/// Runs a test whose losses are `losses` in turn, on a [`Recorder`] and an empty VarStore.
fn run_losses(
    config: RangeTestConfig,
    losses: &[f64],
) -> anyhow::Result<(cyclic_lr::range_test::RangeTestResult, Recorder)> {
    let vs = VarStore::new(Device::Cpu);
    let mut recorder = Recorder::default();
    let mut next = losses.iter();
    let result = config.init()?.run(&vs, &mut recorder, 0.5, |_, _| {
        next.next()
            .copied()
            .context("the test asked for more losses than given")
    })?;
    Ok((result, recorder))
}

// The sweep.

#[test]
fn exponential_sweep_has_equal_ratios_from_start_to_end() -> anyhow::Result<()> {
    let test = RangeTestConfig::new(1e-4, 1.0, 9).init()?;
    let rates: Vec<f64> = (0..9).map(|i| test.learning_rate(i)).collect();
    assert_eq!((rates[0], rates[8]), (1e-4, 1.0));
    for pair in rates.windows(2) {
        let ratio = pair[1] / pair[0];
        assert!((ratio - 10f64.sqrt()).abs() < 1e-12, "{rates:?}");
    }
    Ok(())
}

#[test]
fn exponential_sweep_over_six_hundred_decades_stays_finite() -> anyhow::Result<()> {
    let test = RangeTestConfig::new(1e-300, 1e300, 7).init()?;
    let rates: Vec<f64> = (0..7).map(|i| test.learning_rate(i)).collect();
    for (i, rate) in rates.iter().enumerate() {
        let expected = 10f64.powi(100 * i as i32 - 300);
        assert!((rate / expected - 1.0).abs() < 1e-12, "{rates:?}");
    }
    Ok(())
}

#[test]
fn linear_sweep_has_equal_steps_from_start_to_end() -> anyhow::Result<()> {
    let test = RangeTestConfig::new(0.0, 0.8, 5)
        .with_sweep(Sweep::Linear)
        .init()?;
    let rates: Vec<f64> = (0..5).map(|i| test.learning_rate(i)).collect();
    assert_eq!(rates, [0.0, 0.2, 0.4, 0.6000000000000001, 0.8]);
    Ok(())
}

#[test]
fn each_step_trains_at_the_rate_set_on_the_optimizer() -> anyhow::Result<()> {
    let vs = VarStore::new(Device::Cpu);
    let mut recorder = Recorder::default();
    let test = RangeTestConfig::new(0.001, 1.0, 4).init()?;
    let mut seen = Vec::new();
    let result = test.run(&vs, &mut recorder, 0.5, |target: &mut Recorder, lr| {
        seen.push((target.rates.last().copied(), lr));
        Ok::<_, std::convert::Infallible>(1.0)
    })?;
    let expected: Vec<(Option<f64>, f64)> = (0..4)
        .map(|i| (Some(test.learning_rate(i)), test.learning_rate(i)))
        .collect();
    assert_eq!(seen, expected);
    let recorded: Vec<f64> = result.points().iter().map(|p| p.learning_rate).collect();
    assert_eq!(recorded, expected.iter().map(|e| e.1).collect::<Vec<_>>());
    Ok(())
}

// The smoothing.

#[test]
fn smoothed_loss_of_a_constant_loss_is_that_loss() -> anyhow::Result<()> {
    let (result, _) = run_losses(RangeTestConfig::new(0.001, 1.0, 50), &[0.7; 50])?;
    for point in result.points() {
        assert!((point.smoothed_loss - 0.7).abs() < 1e-12, "{point:?}");
    }
    Ok(())
}

#[test]
fn smoothed_loss_is_the_bias_corrected_moving_average() -> anyhow::Result<()> {
    let losses = [4.0, 2.0, 1.0];
    let (result, _) = run_losses(
        RangeTestConfig::new(0.001, 1.0, 3).with_smoothing(0.5),
        &losses,
    )?;
    // m = 0.5 m + 0.5 loss from m = 0: 2, 2, 1.5; divided by 1 - 0.5^n: 0.5, 0.75, 0.875.
    let smoothed: Vec<f64> = result.points().iter().map(|p| p.smoothed_loss).collect();
    assert_eq!(smoothed, [4.0, 2.0 / 0.75, 1.5 / 0.875]);
    Ok(())
}

#[test]
fn smoothing_zero_keeps_the_raw_loss() -> anyhow::Result<()> {
    let losses = [3.0, 1.0, 2.0, 0.5];
    let (result, _) = run_losses(
        RangeTestConfig::new(0.001, 1.0, 4).with_smoothing(0.0),
        &losses,
    )?;
    let smoothed: Vec<f64> = result.points().iter().map(|p| p.smoothed_loss).collect();
    assert_eq!(smoothed, losses);
    Ok(())
}

// The early stop.

#[test]
fn smoothed_loss_above_the_divergence_factor_times_its_best_stops_the_test() -> anyhow::Result<()> {
    let losses = [2.0, 1.0, 3.9, 4.1, 1.0, 1.0];
    let config = RangeTestConfig::new(0.001, 1.0, 6).with_smoothing(0.0);
    let (result, recorder) = run_losses(config, &losses)?;
    assert_eq!(
        result.stop(),
        StopReason::Diverged {
            best_smoothed_loss: 1.0
        }
    );
    assert_eq!(result.points().len(), 4);
    assert!(result.stopped_early());
    assert_eq!(recorder.rates.last(), Some(&0.5));
    Ok(())
}

#[test]
fn infinite_divergence_factor_runs_the_whole_sweep() -> anyhow::Result<()> {
    let losses = [1.0, 100.0, 1e6, 1e9];
    let config = RangeTestConfig::new(0.001, 1.0, 4)
        .with_smoothing(0.0)
        .with_divergence_factor(f64::INFINITY);
    let (result, _) = run_losses(config, &losses)?;
    assert_eq!(result.stop(), StopReason::Completed);
    assert_eq!(result.points().len(), 4);
    Ok(())
}

#[test]
fn negative_losses_do_not_count_as_divergence() -> anyhow::Result<()> {
    let losses = [-1.0, -3.0, -0.5, -2.0];
    let (result, _) = run_losses(
        RangeTestConfig::new(0.001, 1.0, 4).with_smoothing(0.0),
        &losses,
    )?;
    assert_eq!(result.stop(), StopReason::Completed);
    Ok(())
}

#[test]
fn nan_loss_stops_the_test_and_is_flagged() -> anyhow::Result<()> {
    let losses = [2.0, 1.5, 1.0, f64::NAN, 0.5];
    let (result, recorder) = run_losses(RangeTestConfig::new(0.001, 1.0, 5), &losses)?;
    assert_eq!(result.stop(), StopReason::NonFiniteLoss);
    assert_eq!(result.points().len(), 4);
    assert!(result.points()[3].loss.is_nan());
    assert_eq!(recorder.rates.last(), Some(&0.5));
    Ok(())
}

#[test]
fn infinite_loss_stops_the_test_and_still_suggests_from_the_finite_points() -> anyhow::Result<()> {
    let losses = [2.0, 1.5, 1.0, f64::INFINITY];
    let (result, _) = run_losses(
        RangeTestConfig::new(0.001, 1.0, 4).with_smoothing(0.0),
        &losses,
    )?;
    assert_eq!(result.stop(), StopReason::NonFiniteLoss);
    let suggestion = result.suggestion().context("a suggestion")?;
    assert_eq!(suggestion.minimum_index, 2);
    Ok(())
}

#[test]
fn quadratic_under_sgd_stops_early_just_past_the_divergence_threshold() -> anyhow::Result<()> {
    for a in [1.0, 4.0, 100.0] {
        for sweep in [Sweep::Exponential, Sweep::Linear] {
            let (low, high) = match sweep {
                Sweep::Linear => (1e-3, 4.0),
                _ => (1e-4, 10.0),
            };
            let result = quadratic_test(a, sweep, low, high, 7)?;
            let stopped_at = result.points()[result.points().len() - 1].learning_rate;
            let threshold = 2.0 / a;
            assert!(
                matches!(result.stop(), StopReason::Diverged { .. }),
                "a = {a}, {sweep:?}: {:?}",
                result.stop()
            );
            assert!(
                threshold < stopped_at && stopped_at < 3.0 * threshold,
                "a = {a}, {sweep:?}: stopped at {stopped_at}, threshold {threshold}"
            );
        }
    }
    Ok(())
}

#[test]
fn suggested_max_on_the_quadratic_is_below_the_divergence_threshold() -> anyhow::Result<()> {
    for a in [1.0, 4.0, 100.0] {
        for sweep in [Sweep::Exponential, Sweep::Linear] {
            for seed in 0..3 {
                let result = quadratic_test(a, sweep, 1e-3, 10.0, seed)?;
                let suggestion = result.suggestion().context("a suggestion")?;
                assert!(
                    suggestion.max_learning_rate < 2.0 / a,
                    "a = {a}, {sweep:?}, seed {seed}: {suggestion:?}"
                );
            }
        }
    }
    Ok(())
}

// Restoring.

#[test]
fn weights_are_restored_bit_for_bit_after_a_diverged_test() -> anyhow::Result<()> {
    let (vs, w) = quadratic_weights(3);
    let before = bits(&w)?;
    let mut rng = StdRng::seed_from_u64(3);
    let mut opt = nn::Sgd::default().build(&vs, 0.01)?;
    let test = RangeTestConfig::new(1e-4, 10.0, 100).init()?;
    let result = test.run(&vs, &mut opt, 0.01, quadratic_step(1.0, &w, &mut rng))?;
    assert!(result.stopped_early());
    assert_eq!(bits(&w)?, before);
    Ok(())
}

#[test]
fn weights_are_restored_bit_for_bit_when_the_step_fails() -> anyhow::Result<()> {
    let (vs, w) = quadratic_weights(4);
    let before = bits(&w)?;
    let mut rng = StdRng::seed_from_u64(4);
    let mut opt = nn::Sgd::default().build(&vs, 0.01)?;
    let mut step = quadratic_step(1.0, &w, &mut rng);
    let test = RangeTestConfig::new(1e-3, 1.0, 100).init()?;
    let outcome = test.run(&vs, &mut opt, 0.01, |opt, lr| {
        if lr > 0.1 {
            bail!("out of data");
        }
        Ok(step(opt, lr)?)
    });
    match outcome {
        Err(RangeTestError::Step {
            step,
            learning_rate,
            ..
        }) => {
            assert!(learning_rate > 0.1 && step > 0);
            assert!(test.learning_rate(step - 1) <= 0.1);
        }
        other => bail!("expected the step's error, got {other:?}"),
    }
    assert_eq!(bits(&w)?, before);
    Ok(())
}

#[test]
fn weights_are_restored_bit_for_bit_when_the_step_panics() -> anyhow::Result<()> {
    let (vs, w) = quadratic_weights(5);
    let before = bits(&w)?;
    let mut rng = StdRng::seed_from_u64(5);
    let mut opt = nn::Sgd::default().build(&vs, 0.01)?;
    let mut step = quadratic_step(1.0, &w, &mut rng);
    let test = RangeTestConfig::new(1e-3, 1.0, 100).init()?;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        test.run(&vs, &mut opt, 0.01, |opt, lr| {
            assert!(lr <= 0.1, "a bug in the training step");
            step(opt, lr)
        })
    }));
    assert!(outcome.is_err());
    assert_eq!(bits(&w)?, before);
    Ok(())
}

#[test]
fn untrainable_variables_are_restored_too() -> anyhow::Result<()> {
    let vs = VarStore::new(Device::Cpu);
    let mut running_mean = vs.root().zeros_no_train("running_mean", &[3]);
    let mut recorder = Recorder::default();
    let test = RangeTestConfig::new(0.001, 1.0, 5).init()?;
    test.run(&vs, &mut recorder, 0.5, |_, lr| {
        let _filled = tch::no_grad(|| running_mean.f_fill_(lr))?;
        Ok::<_, tch::TchError>(1.0)
    })?;
    assert_eq!(bits(&running_mean)?, [0; 3]);
    Ok(())
}

#[test]
fn optimizer_rate_is_set_back_to_restore_lr_however_the_test_ends() -> anyhow::Result<()> {
    let vs = VarStore::new(Device::Cpu);
    let test = RangeTestConfig::new(0.001, 1.0, 10).init()?;
    let mut completed = Recorder::default();
    test.run(&vs, &mut completed, 0.25, |_, _| {
        Ok::<_, std::convert::Infallible>(1.0)
    })?;
    let mut failed = Recorder::default();
    let outcome = test.run(&vs, &mut failed, 0.25, |_, _| Err("no data"));
    assert!(matches!(outcome, Err(RangeTestError::Step { step: 0, .. })));
    assert_eq!(completed.rates.last(), Some(&0.25));
    assert_eq!(failed.rates, [0.001, 0.25]);
    Ok(())
}

#[test]
fn tch_optimizer_trains_at_restore_lr_after_the_test() -> anyhow::Result<()> {
    // One SGD step on w²/2 from w = 1 moves w to 1 - lr: the rate the optimizer really has.
    let vs = VarStore::new(Device::Cpu);
    let w = vs.root().ones("w", &[1]);
    let mut opt = nn::Sgd::default().build(&vs, 0.01)?;
    let test = RangeTestConfig::new(0.001, 1.0, 10).init()?;
    test.run(&vs, &mut opt, 0.125, |opt, _| {
        let loss = (&w * &w / 2.0).sum(Kind::Float);
        opt.backward_step(&loss);
        f64::try_from(&loss)
    })?;
    opt.backward_step(&(&w * &w / 2.0).sum(Kind::Float));
    assert_eq!(Vec::<f32>::try_from(&w)?, [0.875]);
    Ok(())
}

// The suggestion rule.

#[test]
fn suggestion_is_a_quarter_and_a_sixteenth_of_the_rate_at_the_lowest_smoothed_loss() {
    let curve = [
        (0.001, 2.0),
        (0.01, 1.5),
        (0.1, 0.5),
        (1.0, 0.8),
        (10.0, 5.0),
    ];
    assert_eq!(
        Suggestion::from_curve(curve),
        Some(Suggestion {
            base_learning_rate: 0.00625,
            max_learning_rate: 0.025,
            minimum_learning_rate: 0.1,
            minimum_index: 2,
        })
    );
}

#[test]
fn suggestion_takes_the_first_of_equal_minima() {
    let curve = [(0.001, 2.0), (0.01, 0.5), (0.1, 0.5), (1.0, 3.0)];
    assert_eq!(
        Suggestion::from_curve(curve).map(|s| s.minimum_index),
        Some(1)
    );
}

#[test]
fn suggestion_skips_non_finite_points() {
    let curve = [
        (0.001, 2.0),
        (0.01, 1.0),
        (0.1, f64::NAN),
        (1.0, f64::NEG_INFINITY),
    ];
    assert_eq!(
        Suggestion::from_curve(curve).map(|s| s.minimum_learning_rate),
        Some(0.01)
    );
}

#[test]
fn no_suggestion_when_the_loss_never_falls() {
    assert_eq!(
        Suggestion::from_curve([(0.001, 1.0), (0.01, 1.0), (0.1, 2.0)]),
        None
    );
    assert_eq!(Suggestion::from_curve([]), None);
}

#[test]
fn cyclic_lr_config_cycles_between_the_suggested_bounds() -> anyhow::Result<()> {
    let losses = [2.0, 1.5, 0.5, 0.8, 5.0];
    let (result, _) = run_losses(
        RangeTestConfig::new(0.001, 10.0, 5).with_smoothing(0.0),
        &losses,
    )?;
    let suggestion = result.suggestion().context("a suggestion")?;
    let mut scheduler = result.cyclic_lr_config(10)?.init()?;
    assert_eq!(scheduler.last_lr(), suggestion.base_learning_rate);
    assert_eq!(scheduler.step_to(10)?, suggestion.max_learning_rate);
    Ok(())
}

#[test]
fn cyclic_lr_config_without_a_suggestion_is_an_error() -> anyhow::Result<()> {
    let (result, _) = run_losses(RangeTestConfig::new(0.001, 1.0, 3), &[1.0, 2.0, 3.0])?;
    assert!(matches!(
        result.cyclic_lr_config(10),
        Err(RangeTestError::NoSuggestion)
    ));
    Ok(())
}

// The series as CSV.

#[test]
fn csv_has_a_header_and_one_line_per_point() -> anyhow::Result<()> {
    let (result, _) = run_losses(
        RangeTestConfig::new(0.001, 0.1, 3).with_smoothing(0.0),
        &[1.0, 0.5, f64::NAN],
    )?;
    let mut csv = Vec::new();
    result.write_csv(&mut csv)?;
    assert_eq!(
        String::from_utf8(csv)?,
        "step,learning_rate,loss,smoothed_loss\n0,0.001,1.0,1.0\n1,0.01,0.5,0.5\n2,0.1,nan,nan\n"
    );
    Ok(())
}

// The configuration checks, one per rule.

fn refused(config: RangeTestConfig) -> RangeTestError {
    match config.init() {
        Ok(test) => panic!("{config:?} was accepted as {test:?}"),
        Err(error) => error,
    }
}

#[test]
fn config_start_learning_rate_nan() {
    let error = refused(RangeTestConfig::new(f64::NAN, 1.0, 10));
    assert!(matches!(
        error,
        RangeTestError::NotFinite { parameter: "start_learning_rate", value } if value.is_nan()
    ));
}

#[test]
fn config_end_learning_rate_infinite() {
    assert_eq!(
        refused(RangeTestConfig::new(0.001, f64::INFINITY, 10)),
        RangeTestError::NotFinite {
            parameter: "end_learning_rate",
            value: f64::INFINITY
        }
    );
}

#[test]
fn config_start_learning_rate_zero_for_an_exponential_sweep() {
    let error = refused(RangeTestConfig::new(0.0, 1.0, 10));
    assert_eq!(
        error.to_string(),
        "start_learning_rate must be above 0 for an exponential sweep, got 0.0"
    );
}

#[test]
fn config_start_learning_rate_zero_for_a_linear_sweep_is_accepted() {
    let config = RangeTestConfig::new(0.0, 1.0, 10).with_sweep(Sweep::Linear);
    assert!(config.init().is_ok());
}

#[test]
fn config_start_learning_rate_negative_for_a_linear_sweep() {
    let error = refused(RangeTestConfig::new(-0.1, 1.0, 10).with_sweep(Sweep::Linear));
    assert_eq!(
        error.to_string(),
        "start_learning_rate must be at least 0, got -0.1"
    );
}

#[test]
fn config_end_learning_rate_not_above_start() {
    assert_eq!(
        refused(RangeTestConfig::new(0.1, 0.1, 10)),
        RangeTestError::EndNotAboveStart {
            start: 0.1,
            end: 0.1
        }
    );
}

#[test]
fn config_steps_one() {
    assert_eq!(
        refused(RangeTestConfig::new(0.001, 1.0, 1)),
        RangeTestError::TooFewSteps { steps: 1 }
    );
}

#[test]
fn config_smoothing_one() {
    assert_eq!(
        refused(RangeTestConfig::new(0.001, 1.0, 10).with_smoothing(1.0)),
        RangeTestError::Smoothing { value: 1.0 }
    );
}

#[test]
fn config_smoothing_negative() {
    assert_eq!(
        refused(RangeTestConfig::new(0.001, 1.0, 10).with_smoothing(-0.5)),
        RangeTestError::Smoothing { value: -0.5 }
    );
}

#[test]
fn config_smoothing_nan() {
    let error = refused(RangeTestConfig::new(0.001, 1.0, 10).with_smoothing(f64::NAN));
    assert!(matches!(
        error,
        RangeTestError::NotFinite { parameter: "smoothing", value } if value.is_nan()
    ));
}

#[test]
fn config_divergence_factor_one() {
    assert_eq!(
        refused(RangeTestConfig::new(0.001, 1.0, 10).with_divergence_factor(1.0)),
        RangeTestError::DivergenceFactor { value: 1.0 }
    );
}

#[test]
fn config_divergence_factor_nan() {
    let error = refused(RangeTestConfig::new(0.001, 1.0, 10).with_divergence_factor(f64::NAN));
    assert!(matches!(error, RangeTestError::DivergenceFactor { value } if value.is_nan()));
}

#[test]
fn run_restore_lr_negative_is_refused_before_any_step() -> anyhow::Result<()> {
    let vs = VarStore::new(Device::Cpu);
    let mut recorder = Recorder::default();
    let steps = Cell::new(0);
    let outcome =
        RangeTestConfig::new(0.001, 1.0, 10)
            .init()?
            .run(&vs, &mut recorder, -0.01, |_, _| {
                steps.set(steps.get() + 1);
                Ok::<_, std::convert::Infallible>(1.0)
            });
    assert_eq!(
        outcome,
        Err(RangeTestError::TooLow {
            parameter: "restore_lr",
            value: -0.01,
            expected: "at least 0"
        })
    );
    assert_eq!((steps.get(), recorder.rates.len()), (0, 0));
    Ok(())
}

#[test]
fn run_restore_lr_nan_is_refused() -> anyhow::Result<()> {
    let vs = VarStore::new(Device::Cpu);
    let outcome = RangeTestConfig::new(0.001, 1.0, 10).init()?.run(
        &vs,
        &mut Recorder::default(),
        f64::NAN,
        |_, _| Ok::<_, std::convert::Infallible>(1.0),
    );
    assert!(matches!(
        outcome,
        Err(RangeTestError::NotFinite {
            parameter: "restore_lr",
            ..
        })
    ));
    Ok(())
}

#[test]
fn step_error_names_the_step_and_the_rate() -> anyhow::Result<()> {
    let vs = VarStore::new(Device::Cpu);
    let test = RangeTestConfig::new(0.0, 3.0, 4)
        .with_sweep(Sweep::Linear)
        .init()?;
    let outcome = test.run(&vs, &mut Recorder::default(), 0.5, |_, lr| {
        if lr < 2.0 {
            Ok(1.0)
        } else {
            Err("out of data")
        }
    });
    let error = outcome.err().context("an error")?;
    assert_eq!(
        error.to_string(),
        "the training step 2 at learning rate 2.0 failed: out of data"
    );
    Ok(())
}

#[test]
fn points_hold_the_loss_the_step_returned() -> anyhow::Result<()> {
    let (result, _) = run_losses(RangeTestConfig::new(0.001, 1.0, 3), &[3.0, 2.0, 1.0])?;
    let losses: Vec<f64> = result
        .points()
        .iter()
        .map(|p: &RangeTestPoint| p.loss)
        .collect();
    assert_eq!(losses, [3.0, 2.0, 1.0]);
    Ok(())
}

#[test]
fn progress_sees_every_point_as_it_is_measured() -> anyhow::Result<()> {
    let vs = VarStore::new(Device::Cpu);
    let test = RangeTestConfig::new(0.001, 1.0, 5).init()?;
    let mut seen = Vec::new();
    let mut losses = [3.0, 2.0, 1.0, 1.5, 2.0].into_iter();
    let result = test.run_with_progress(
        &vs,
        &mut Recorder::default(),
        0.5,
        |_, _| losses.next().context("too many steps"),
        |step, point: &RangeTestPoint| seen.push((step, *point)),
    )?;
    let expected: Vec<(usize, RangeTestPoint)> =
        result.points().iter().copied().enumerate().collect();
    assert_eq!(seen, expected);
    Ok(())
}

#[test]
fn range_test_drives_a_tch_optimizer_wrapper() -> anyhow::Result<()> {
    let (vs, w) = quadratic_weights(6);
    let before = bits(&w)?;
    let mut rng = StdRng::seed_from_u64(6);
    let mut step = quadratic_step(1.0, &w, &mut rng);
    let mut opt = cyclic_lr::TchOptimizer::new(nn::Sgd::default(), &vs, 0.01)?;
    let test = RangeTestConfig::new(1e-3, 10.0, 100).init()?;
    let result = test.run(&vs, &mut opt, 0.01, |opt, lr| step(opt, lr))?;
    assert!(result.stopped_early());
    assert_eq!(bits(&w)?, before);
    Ok(())
}
