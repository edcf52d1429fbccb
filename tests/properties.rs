//! The scheduler's invariants, for arbitrary accepted configurations: every mode, custom
//! scale functions, base above max, one value or one per group, epochs up to `MAX_EPOCH`.

use cyclic_lr::{CyclicLr, CyclicLrConfig, Error, MAX_EPOCH, Mode, PerGroup, ScaleMode, State};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// A learning rate: zero, tiny, ordinary or huge.
fn learning_rate() -> impl Strategy<Value = f64> + Clone {
    prop_oneof![
        Just(0.0),
        1e-8..1e-2,
        0.0..10.0,
        1e-300..1e300,
        Just(f64::MAX),
    ]
}

fn momentum() -> impl Strategy<Value = f64> + Clone {
    prop_oneof![Just(0.0), Just(1.0), 0.0..=1.0]
}

fn step_size() -> impl Strategy<Value = u64> {
    prop_oneof![1..20u64, 1..5000u64, 1..(1u64 << 52)]
}

/// One value for all groups, or one per group.
fn per_group(
    groups: usize,
    value: impl Strategy<Value = f64> + Clone,
) -> impl Strategy<Value = PerGroup> {
    prop_oneof![
        value.clone().prop_map(PerGroup::All),
        prop::collection::vec(value, groups).prop_map(PerGroup::Each),
    ]
}

/// How the amplitude is scaled: the built-in modes, or a custom function valid for every
/// argument >= 0 (which is all a scheduler hands it).
#[derive(Clone, Copy, Debug)]
enum Scaling {
    Mode(Mode, f64),
    HalfPerCycle,
    DecayPerIteration,
}

fn scaling() -> impl Strategy<Value = Scaling> + Clone {
    prop_oneof![
        Just(Scaling::Mode(Mode::Triangular, 1.0)),
        Just(Scaling::Mode(Mode::Triangular2, 1.0)),
        prop_oneof![Just(1.0), 0.5..1.0, 1e-300..1.0]
            .prop_map(|gamma| Scaling::Mode(Mode::ExpRange, gamma)),
        Just(Scaling::HalfPerCycle),
        Just(Scaling::DecayPerIteration),
    ]
}

fn with_scaling(config: CyclicLrConfig, scaling: Scaling) -> CyclicLrConfig {
    match scaling {
        Scaling::Mode(mode, gamma) => config.with_mode(mode).with_exp_gamma(gamma),
        Scaling::HalfPerCycle => config.with_scale_fn(|cycle| 0.5f64.powf(cycle - 1.0)),
        Scaling::DecayPerIteration => config
            .with_scale_fn(|it| 1.0 / (1.0 + it))
            .with_scale_mode(ScaleMode::Iterations),
    }
}

/// Any configuration the scheduler accepts.
fn config() -> impl Strategy<Value = CyclicLrConfig> {
    scaled_config(scaling())
}

/// A configuration the scheduler accepts, with one of these scalings.
fn scaled_config(
    scaling: impl Strategy<Value = Scaling> + Clone,
) -> impl Strategy<Value = CyclicLrConfig> {
    (1..5usize)
        .prop_flat_map(move |groups| {
            (
                per_group(groups, learning_rate()),
                per_group(groups, learning_rate()),
                step_size(),
                step_size(),
                scaling.clone(),
                any::<bool>(),
                per_group(groups, momentum()),
                per_group(groups, momentum()),
            )
        })
        .prop_map(
            |(base, max, up, down, scaling, cycle_momentum, base_momentum, max_momentum)| {
                let config = CyclicLrConfig::new(base, max, up)
                    .with_step_size_down(down)
                    .with_cycle_momentum(cycle_momentum)
                    .with_base_momentum(base_momentum)
                    .with_max_momentum(max_momentum);
                with_scaling(config, scaling)
            },
        )
}

/// A configuration with a triangular schedule.
fn triangular_config() -> impl Strategy<Value = CyclicLrConfig> {
    scaled_config(Just(Scaling::Mode(Mode::Triangular, 1.0)))
}

fn epoch() -> impl Strategy<Value = i64> {
    prop_oneof![0..1000i64, 0..=MAX_EPOCH, (MAX_EPOCH - 1000)..=MAX_EPOCH]
}

fn init(config: CyclicLrConfig) -> Result<CyclicLr, TestCaseError> {
    config
        .init()
        .map_err(|e| TestCaseError::fail(format!("refused an accepted configuration: {e}")))
}

fn step_to(scheduler: &mut CyclicLr, epoch: i64) -> Result<(), TestCaseError> {
    scheduler
        .step_to(epoch)
        .map(|_| ())
        .map_err(|e| TestCaseError::fail(format!("step_to({epoch}): {e}")))
}

fn step(scheduler: &mut CyclicLr) -> Result<(), TestCaseError> {
    scheduler
        .step()
        .map(|_| ())
        .map_err(|e| TestCaseError::fail(format!("step: {e}")))
}

/// The bounds of each group, from the configuration the scheduler saves.
fn bounds(scheduler: &CyclicLr) -> Result<Vec<[f64; 4]>, TestCaseError> {
    let state = scheduler.state_dict();
    let config = state
        .config
        .ok_or_else(|| TestCaseError::fail("state without its configuration"))?;
    let value = |list: &PerGroup, group: usize| match list {
        PerGroup::All(value) => Ok(*value),
        PerGroup::Each(values) => values
            .get(group)
            .copied()
            .ok_or_else(|| TestCaseError::fail("a list shorter than the groups")),
    };
    (0..scheduler.group_count())
        .map(|g| {
            Ok([
                value(&config.base_learning_rate, g)?,
                value(&config.max_learning_rate, g)?,
                value(&config.base_momentum, g)?,
                value(&config.max_momentum, g)?,
            ])
        })
        .collect()
}

fn bits(values: &[f64]) -> Vec<u64> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// Everything observable about a scheduler, with rates compared to the bit.
fn observed(scheduler: &CyclicLr) -> (i64, Vec<u64>, Vec<u64>, String) {
    (
        scheduler.last_epoch(),
        bits(scheduler.last_lrs()),
        bits(scheduler.last_momentums()),
        scheduler.state_dict().to_json(),
    )
}

fn ulp(x: f64) -> f64 {
    let x = x.abs();
    f64::from_bits(x.to_bits() + 1) - x
}

/// Some steps after a save point: the first few, then jumps far ahead.
const STEPS_AFTER_SAVE: usize = 25;

proptest! {
    // Each case costs microseconds: four times proptest's default number of them.
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// `base + (max - base) * scale_factor * scale` is rounded as Paddle rounds it (the
    /// crate must give Paddle's bits, so it does not clamp): at the peak it can miss `max` by
    /// an ulp of the larger bound, since `base + (max - base) != max` in floating point (for
    /// instance with base 9.98 and max 0.0099, where the subtraction cancels). So the bounds
    /// hold within two ulps of the larger bound, and the rate is never negative.
    #[test]
    fn learning_rate_stays_within_bounds(config in config(), epoch in epoch()) {
        let mut scheduler = init(config)?;
        step_to(&mut scheduler, epoch)?;
        for (&lr, [base, max, ..]) in scheduler.last_lrs().iter().zip(bounds(&scheduler)?) {
            let (low, high) = (base.min(max), base.max(max));
            let rounding = 2.0 * ulp(high);
            prop_assert!(lr.is_finite() && lr >= 0.0, "lr {lr} at epoch {epoch}");
            prop_assert!(low - rounding <= lr && lr <= high + rounding,
                "lr {lr:e} outside [{base:e}, {max:e}] at epoch {epoch}");
        }
    }

    /// The same rounding as the learning rate's, from the other end.
    #[test]
    fn momentum_stays_within_bounds(config in config(), epoch in epoch()) {
        let mut scheduler = init(config.with_cycle_momentum(true))?;
        step_to(&mut scheduler, epoch)?;
        let momentums = scheduler.last_momentums();
        prop_assert_eq!(momentums.len(), scheduler.group_count());
        for (&m, [.., base, max]) in momentums.iter().zip(bounds(&scheduler)?) {
            let (low, high) = (base.min(max), base.max(max));
            let rounding = 2.0 * ulp(high);
            prop_assert!(low - rounding <= m && m <= high + rounding,
                "momentum {m} outside [{base}, {max}] at epoch {epoch}");
        }
    }

    /// At a cycle's start `pct` is exactly 0, whatever the epoch: the rate is the base and
    /// the momentum its maximum, to the bit.
    #[test]
    fn each_cycle_starts_exactly_at_the_base(config in config(), epoch in epoch()) {
        let mut scheduler = init(config.with_cycle_momentum(true))?;
        let cycle = (scheduler.schedule().step_size_up() + scheduler.schedule().step_size_down()) as i64;
        let start = epoch - epoch % cycle;
        step_to(&mut scheduler, start)?;
        let groups = bounds(&scheduler)?;
        let base: Vec<f64> = groups.iter().map(|[base, ..]| *base).collect();
        let max_momentum: Vec<f64> = groups.iter().map(|[.., max]| *max).collect();
        prop_assert_eq!(bits(scheduler.last_lrs()), bits(&base), "epoch {}", start);
        prop_assert_eq!(bits(scheduler.last_momentums()), bits(&max_momentum), "epoch {}", start);
    }

    #[test]
    fn momentum_is_not_cycled_unless_asked(config in config(), epoch in epoch()) {
        let mut scheduler = init(config.with_cycle_momentum(false))?;
        step_to(&mut scheduler, epoch)?;
        prop_assert!(scheduler.last_momentums().is_empty());
    }

    /// `lr(e + cycle) == lr(e)` to the bit, except around powers of two of the cycle count.
    ///
    /// Paddle computes `pct = 1 + e / cycle_size - cycle` in floating point. With
    /// `k = e / cycle_steps` (cycles completed), `e / cycle_size` is rounded on the grid of
    /// the binade of `k` (finer for `k = 0`), and `1 + e / cycle_size` on that of `k + 1`; the
    /// subtraction of `cycle` is then exact. One cycle later the same fraction is rounded on
    /// the grids of `k + 1` and `k + 2`: the same grids, and so the same bits, unless `k + 1`
    /// or `k + 2` is a power of two. There `pct` moves by up to about one ulp of `k + 2`, and
    /// the rate by that times the amplitude over the shorter half of the cycle (as a fraction
    /// of it): an absolute error that can be thousands of ulps of a rate near a small base.
    #[test]
    fn triangular_is_periodic(config in triangular_config(), epoch in epoch()) {
        let mut scheduler = init(config)?;
        let up = scheduler.schedule().step_size_up();
        let down = scheduler.schedule().step_size_down();
        let cycle = (up + down) as i64;
        let epoch = epoch.min(MAX_EPOCH - cycle);
        step_to(&mut scheduler, epoch)?;
        let here = scheduler.last_lrs().to_vec();
        step_to(&mut scheduler, epoch + cycle)?;
        let later = scheduler.last_lrs();
        let k = (epoch / cycle) as u64;
        if !(k + 1).is_power_of_two() && !(k + 2).is_power_of_two() {
            prop_assert_eq!(bits(&here), bits(later), "epoch {}, cycle {}", epoch, cycle);
        } else {
            let up_pct = up as f64 / (up + down) as f64;
            let shorter_half = up_pct.min(1.0 - up_pct);
            for ((&a, &b), [base, max, ..]) in here.iter().zip(later).zip(bounds(&scheduler)?) {
                let pct_error = 2.0 * ulp((k + 2) as f64) + 4.0 * f64::EPSILON;
                let tolerance =
                    (max - base).abs() * pct_error / shorter_half + 2.0 * ulp(base.max(max));
                prop_assert!((a - b).abs() <= tolerance,
                    "lr {a:e} then {b:e} one cycle later (epoch {epoch}, cycle {cycle})");
            }
        }
    }

    #[test]
    fn step_equals_step_to_next_epoch(config in config(), epoch in epoch()) {
        let mut stepped = init(config)?;
        let epoch = epoch.min(MAX_EPOCH - 1);
        step_to(&mut stepped, epoch)?;
        let mut jumped = stepped.clone();
        step(&mut stepped)?;
        step_to(&mut jumped, epoch + 1)?;
        prop_assert_eq!(observed(&stepped), observed(&jumped));
    }

    #[test]
    fn save_and_load_continue_exactly(config in config(), epoch in epoch()) {
        let epoch = epoch.min(MAX_EPOCH - STEPS_AFTER_SAVE as i64);
        let mut trained = init(config.clone())?;
        step_to(&mut trained, epoch)?;
        let json = trained.state_dict().to_json();

        let mut resumed = init(config)?;
        let state = State::from_json(json.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("reading back {json}: {e}")))?;
        resumed
            .set_state_dict(&state)
            .map_err(|e| TestCaseError::fail(format!("loading {json}: {e}")))?;
        prop_assert_eq!(observed(&resumed), observed(&trained));
        for _ in 0..STEPS_AFTER_SAVE {
            step(&mut trained)?;
            step(&mut resumed)?;
            prop_assert_eq!(observed(&resumed), observed(&trained));
        }
    }

    #[test]
    fn state_of_another_configuration_is_refused(
        config in config(),
        change in 0..5u8,
        epoch in 0..1000i64,
    ) {
        let mut other = init(changed(config.clone(), change))?;
        step_to(&mut other, epoch)?;
        let mut scheduler = init(config)?;
        let before = observed(&scheduler);
        let result = scheduler.set_state_dict(&other.state_dict());
        prop_assert!(matches!(result, Err(Error::StateMismatch { .. })), "{:?}", result);
        prop_assert_eq!(observed(&scheduler), before);
    }

    #[test]
    fn any_bytes_give_a_value_or_an_error(
        bytes in prop::collection::vec(any::<u8>(), 0..200),
        config in config(),
    ) {
        let _ = State::from_json(&bytes);
        check_load(config, &bytes)?;
    }

    #[test]
    fn any_json_like_text_gives_a_value_or_an_error(
        text in json_like(),
        config in config(),
    ) {
        let _ = State::from_json(text.as_bytes());
        check_load(config, text.as_bytes())?;
    }
}

/// A load either fails and changes nothing, or leaves a scheduler whose rates are its
/// schedule's at the loaded epoch.
fn check_load(config: CyclicLrConfig, bytes: &[u8]) -> Result<(), TestCaseError> {
    let mut scheduler = init(config)?;
    let before = observed(&scheduler);
    match scheduler.load_state_json(bytes) {
        Err(_) => prop_assert_eq!(observed(&scheduler), before),
        Ok(()) => {
            let mut fresh = scheduler.clone();
            step_to(&mut fresh, scheduler.last_epoch())?;
            prop_assert_eq!(observed(&scheduler), observed(&fresh));
        }
    }
    Ok(())
}

/// The same configuration with one saved field changed.
fn changed(config: CyclicLrConfig, change: u8) -> CyclicLrConfig {
    let saved = config
        .clone()
        .init()
        .ok()
        .and_then(|s| s.state_dict().config);
    let Some(saved) = saved else {
        return config;
    };
    match change {
        0 => config.with_step_size_down(saved.step_size_down + 1),
        1 => config.with_mode(match saved.mode {
            Mode::Triangular => Mode::Triangular2,
            _ => Mode::Triangular,
        }),
        2 => config.with_cycle_momentum(!saved.cycle_momentum),
        3 => config.with_exp_gamma(if saved.exp_gamma == 0.5 { 0.25 } else { 0.5 }),
        _ => config
            .with_last_epoch(0)
            .with_step_size_down(if saved.step_size_down == 1 { 2 } else { 1 }),
    }
}

/// Text made of the pieces of a state: keys, numbers, lists, nesting, in any order.
fn json_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(",".to_owned()),
        Just(":".to_owned()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("\"version\":".to_owned()),
        Just("\"last_epoch\":".to_owned()),
        Just("\"last_lr\":".to_owned()),
        Just("\"last_momentum\":".to_owned()),
        Just("\"config\":".to_owned()),
        Just("\"mode\":\"exp_range\"".to_owned()),
        Just("1e999".to_owned()),
        Just("-0".to_owned()),
        Just("9007199254740992".to_owned()),
        Just("18446744073709551616".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|x| x.to_string()),
        "[a-z_\"\\\\]{0,8}",
    ];
    let text = prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat());
    let state = (0..2000i64, prop::collection::vec(0.0..2.0f64, 1..4))
        .prop_map(|(e, lrs)| format!("{{\"last_epoch\": {e}, \"last_lr\": {lrs:?}}}"));
    let single = (0..2000i64, 0.0..2.0f64)
        .prop_map(|(e, lr)| format!("{{\"last_epoch\": {e}, \"last_lr\": {lr:?}}}"));
    prop_oneof![text, state, single]
}
