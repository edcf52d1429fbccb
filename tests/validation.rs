//! One test per validation rule: each names the field and the rule, and asserts the exact
//! `cyclic_lr::Error` refused. A refused step or load leaves the scheduler as it was.

use cyclic_lr::{CyclicLr, CyclicLrConfig, Error, MAX_EPOCH, Mode, ScaleMode, State};

/// Everything observable about a scheduler, to check that a refused call changed nothing.
fn snapshot(scheduler: &CyclicLr) -> (State, Vec<f64>, Vec<f64>) {
    (
        scheduler.state_dict(),
        scheduler.last_lrs().to_vec(),
        scheduler.last_momentums().to_vec(),
    )
}

fn refused(config: CyclicLrConfig) -> Error {
    match config.init() {
        Ok(scheduler) => panic!(
            "accepted a configuration that must be refused: {:?}",
            scheduler.state_dict()
        ),
        Err(error) => error,
    }
}

// Learning rates.

#[test]
fn config_base_learning_rate_nan() {
    let error = refused(CyclicLrConfig::new(f64::NAN, 1.0, 10));
    assert!(
        matches!(error, Error::NotFinite { parameter: "base_learning_rate", value } if value.is_nan()),
        "{error:?}"
    );
}

#[test]
fn config_base_learning_rate_infinite() {
    assert_eq!(
        refused(CyclicLrConfig::new(f64::INFINITY, 1.0, 10)),
        Error::NotFinite {
            parameter: "base_learning_rate",
            value: f64::INFINITY
        }
    );
}

#[test]
fn config_base_learning_rate_negative() {
    assert_eq!(
        refused(CyclicLrConfig::new(-0.5, 1.0, 10)),
        Error::Negative {
            parameter: "base_learning_rate",
            value: -0.5
        }
    );
}

#[test]
fn config_max_learning_rate_nan() {
    let error = refused(CyclicLrConfig::new(0.5, f64::NAN, 10));
    assert!(
        matches!(error, Error::NotFinite { parameter: "max_learning_rate", value } if value.is_nan()),
        "{error:?}"
    );
}

#[test]
fn config_max_learning_rate_negative_infinite() {
    assert_eq!(
        refused(CyclicLrConfig::new(0.5, f64::NEG_INFINITY, 10)),
        Error::NotFinite {
            parameter: "max_learning_rate",
            value: f64::NEG_INFINITY
        }
    );
}

#[test]
fn config_max_learning_rate_negative() {
    assert_eq!(
        refused(CyclicLrConfig::new(0.5, -1.0, 10)),
        Error::Negative {
            parameter: "max_learning_rate",
            value: -1.0
        }
    );
}

#[test]
fn config_learning_rate_negative_in_one_group() {
    assert_eq!(
        refused(CyclicLrConfig::new(vec![0.1, 0.2], vec![1.0, -2.0], 10)),
        Error::Negative {
            parameter: "max_learning_rate",
            value: -2.0
        }
    );
}

#[test]
fn config_base_learning_rate_above_max_accepted() {
    // Paddle and PyTorch accept base > max: the rate then falls first and rises back.
    let scheduler = CyclicLrConfig::new(1.0, 0.5, 10).init();
    assert_eq!(scheduler.map(|s| s.last_lr()), Ok(1.0));
}

#[test]
fn config_learning_rate_zero_accepted() {
    let scheduler = CyclicLrConfig::new(0.0, 0.0, 10).init();
    assert_eq!(scheduler.map(|s| s.last_lr()), Ok(0.0));
}

// Step sizes.

#[test]
fn config_step_size_up_zero() {
    assert_eq!(
        refused(CyclicLrConfig::new(0.5, 1.0, 0)),
        Error::ZeroStepSize {
            parameter: "step_size_up"
        }
    );
}

#[test]
fn config_step_size_down_zero() {
    assert_eq!(
        refused(CyclicLrConfig::new(0.5, 1.0, 10).with_step_size_down(0)),
        Error::ZeroStepSize {
            parameter: "step_size_down"
        }
    );
}

#[test]
fn config_cycle_over_2_pow_53() {
    assert_eq!(
        refused(CyclicLrConfig::new(0.5, 1.0, 1 << 52).with_step_size_down((1 << 52) + 1)),
        Error::CycleTooLong {
            step_size_up: 1 << 52,
            step_size_down: (1 << 52) + 1
        }
    );
}

#[test]
fn config_cycle_overflowing_u64() {
    assert_eq!(
        refused(CyclicLrConfig::new(0.5, 1.0, u64::MAX).with_step_size_down(u64::MAX)),
        Error::CycleTooLong {
            step_size_up: u64::MAX,
            step_size_down: u64::MAX
        }
    );
}

#[test]
fn config_cycle_of_exactly_2_pow_53_accepted() {
    let scheduler = CyclicLrConfig::new(0.5, 1.0, 1 << 52).init();
    assert_eq!(scheduler.map(|s| s.last_lr()), Ok(0.5));
}

// exp_gamma.

#[test]
fn config_exp_gamma_zero() {
    assert_eq!(
        refused(
            CyclicLrConfig::new(0.5, 1.0, 10)
                .with_mode(Mode::ExpRange)
                .with_exp_gamma(0.0)
        ),
        Error::ExpGamma { value: 0.0 }
    );
}

#[test]
fn config_exp_gamma_negative() {
    assert_eq!(
        refused(
            CyclicLrConfig::new(0.5, 1.0, 10)
                .with_mode(Mode::ExpRange)
                .with_exp_gamma(-0.5)
        ),
        Error::ExpGamma { value: -0.5 }
    );
}

#[test]
fn config_exp_gamma_above_one() {
    assert_eq!(
        refused(
            CyclicLrConfig::new(0.5, 1.0, 10)
                .with_mode(Mode::ExpRange)
                .with_exp_gamma(1.0000000000000002)
        ),
        Error::ExpGamma {
            value: 1.0000000000000002
        }
    );
}

#[test]
fn config_exp_gamma_nan() {
    let error = refused(
        CyclicLrConfig::new(0.5, 1.0, 10)
            .with_mode(Mode::ExpRange)
            .with_exp_gamma(f64::NAN),
    );
    assert!(
        matches!(error, Error::NotFinite { parameter: "exp_gamma", value } if value.is_nan()),
        "{error:?}"
    );
}

#[test]
fn config_exp_gamma_one_accepted() {
    let scheduler = CyclicLrConfig::new(0.5, 1.0, 10)
        .with_mode(Mode::ExpRange)
        .with_exp_gamma(1.0)
        .init();
    assert_eq!(scheduler.map(|s| s.last_lr()), Ok(0.5));
}

#[test]
fn config_exp_gamma_unused_outside_exp_range_accepted() {
    // Paddle ignores exp_gamma unless the mode is exp_range; so does the crate.
    let scheduler = CyclicLrConfig::new(0.5, 1.0, 10)
        .with_mode(Mode::Triangular)
        .with_exp_gamma(2.0)
        .init();
    assert_eq!(scheduler.map(|s| s.last_lr()), Ok(0.5));
}

// Momentum bounds: checked only when the momentum is cycled, as in PyTorch.

fn cycling_momentum() -> CyclicLrConfig {
    CyclicLrConfig::new(0.5, 1.0, 10).with_cycle_momentum(true)
}

#[test]
fn config_base_momentum_negative() {
    assert_eq!(
        refused(cycling_momentum().with_base_momentum(-0.1)),
        Error::Momentum {
            parameter: "base_momentum",
            value: -0.1
        }
    );
}

#[test]
fn config_base_momentum_above_one() {
    assert_eq!(
        refused(cycling_momentum().with_base_momentum(1.5)),
        Error::Momentum {
            parameter: "base_momentum",
            value: 1.5
        }
    );
}

#[test]
fn config_max_momentum_negative() {
    assert_eq!(
        refused(cycling_momentum().with_max_momentum(-0.25)),
        Error::Momentum {
            parameter: "max_momentum",
            value: -0.25
        }
    );
}

#[test]
fn config_max_momentum_above_one() {
    assert_eq!(
        refused(cycling_momentum().with_max_momentum(vec![0.9, 1.25])),
        Error::Momentum {
            parameter: "max_momentum",
            value: 1.25
        }
    );
}

#[test]
fn config_max_momentum_nan() {
    let error = refused(cycling_momentum().with_max_momentum(f64::NAN));
    assert!(
        matches!(error, Error::NotFinite { parameter: "max_momentum", value } if value.is_nan()),
        "{error:?}"
    );
}

#[test]
fn config_momentum_bounds_zero_and_one_accepted() {
    let scheduler = cycling_momentum()
        .with_base_momentum(0.0)
        .with_max_momentum(1.0)
        .init();
    assert_eq!(
        scheduler.map(|s| s.last_momentums().to_vec()),
        Ok(vec![1.0])
    );
}

#[test]
fn config_momentum_out_of_bounds_ignored_without_cycle_momentum() {
    let scheduler = CyclicLrConfig::new(0.5, 1.0, 10)
        .with_base_momentum(-3.0)
        .with_max_momentum(f64::NAN)
        .init();
    assert_eq!(scheduler.map(|s| s.last_momentums().is_empty()), Ok(true));
}

#[test]
fn config_momentum_list_lengths_ignored_without_cycle_momentum() {
    // Momentum lists shorter than the learning-rate lists are not used, so not refused.
    let scheduler = CyclicLrConfig::new(vec![0.1, 0.2, 0.3], vec![1.0, 2.0, 3.0], 10)
        .with_base_momentum(vec![0.8])
        .with_max_momentum(Vec::new())
        .init();
    assert_eq!(scheduler.map(|s| s.group_count()), Ok(3));
}

// Per-group lists.

#[test]
fn config_max_learning_rate_group_lengths() {
    assert_eq!(
        refused(CyclicLrConfig::new(vec![0.1, 0.2], vec![1.0, 2.0, 3.0], 10)),
        Error::GroupLengths {
            parameter: "max_learning_rate",
            len: 3,
            other: "base_learning_rate",
            other_len: 2
        }
    );
}

#[test]
fn config_base_momentum_group_lengths() {
    assert_eq!(
        refused(
            CyclicLrConfig::new(vec![0.1, 0.2], 1.0, 10)
                .with_cycle_momentum(true)
                .with_base_momentum(vec![0.8, 0.8, 0.8])
        ),
        Error::GroupLengths {
            parameter: "base_momentum",
            len: 3,
            other: "base_learning_rate",
            other_len: 2
        }
    );
}

#[test]
fn config_max_momentum_group_lengths() {
    assert_eq!(
        refused(
            CyclicLrConfig::new(0.1, 1.0, 10)
                .with_cycle_momentum(true)
                .with_base_momentum(vec![0.8, 0.85])
                .with_max_momentum(vec![0.9])
        ),
        Error::GroupLengths {
            parameter: "max_momentum",
            len: 1,
            other: "base_momentum",
            other_len: 2
        }
    );
}

#[test]
fn config_base_learning_rate_empty_list() {
    assert_eq!(
        refused(CyclicLrConfig::new(Vec::new(), 1.0, 10)),
        Error::NoGroups {
            parameter: "base_learning_rate"
        }
    );
}

#[test]
fn config_max_learning_rate_empty_list() {
    assert_eq!(
        refused(CyclicLrConfig::new(0.5, [0.0; 0], 10)),
        Error::NoGroups {
            parameter: "max_learning_rate"
        }
    );
}

#[test]
fn config_base_momentum_empty_list() {
    assert_eq!(
        refused(cycling_momentum().with_base_momentum(Vec::new())),
        Error::NoGroups {
            parameter: "base_momentum"
        }
    );
}

#[test]
fn config_shared_value_broadcasts_to_every_group() {
    let scheduler = CyclicLrConfig::new(0.5, vec![1.0, 2.0, 4.0], 10)
        .with_cycle_momentum(true)
        .with_max_momentum(vec![0.9, 0.95, 0.99])
        .init();
    assert_eq!(
        scheduler.map(|s| (s.last_lrs().to_vec(), s.last_momentums().to_vec())),
        Ok((vec![0.5; 3], vec![0.9, 0.95, 0.99]))
    );
}

// last_epoch.

#[test]
fn config_last_epoch_below_minus_one() {
    assert_eq!(
        refused(CyclicLrConfig::new(0.5, 1.0, 10).with_last_epoch(-2)),
        Error::Epoch {
            parameter: "last_epoch",
            value: -2,
            min: -1,
            max: MAX_EPOCH - 1
        }
    );
}

#[test]
fn config_last_epoch_at_max_epoch() {
    assert_eq!(
        refused(CyclicLrConfig::new(0.5, 1.0, 10).with_last_epoch(MAX_EPOCH)),
        Error::Epoch {
            parameter: "last_epoch",
            value: MAX_EPOCH,
            min: -1,
            max: MAX_EPOCH - 1
        }
    );
}

#[test]
fn config_last_epoch_just_below_max_epoch_accepted() {
    let scheduler = CyclicLrConfig::new(0.5, 1.0, 10)
        .with_last_epoch(MAX_EPOCH - 1)
        .init();
    assert_eq!(scheduler.map(|s| s.last_epoch()), Ok(MAX_EPOCH));
}

// Custom scale functions.

#[test]
fn config_scale_fn_nan() {
    let error = refused(CyclicLrConfig::new(0.5, 1.0, 10).with_scale_fn(|_| f64::NAN));
    assert!(
        matches!(error, Error::ScaleFn { x: 1.0, value } if value.is_nan()),
        "{error:?}"
    );
}

#[test]
fn config_scale_fn_above_one() {
    assert_eq!(
        refused(CyclicLrConfig::new(0.5, 1.0, 10).with_scale_fn(|x| x + 0.5)),
        Error::ScaleFn { x: 1.0, value: 1.5 }
    );
}

#[test]
fn config_scale_fn_negative() {
    assert_eq!(
        refused(
            CyclicLrConfig::new(0.5, 1.0, 10)
                .with_scale_fn(|x| -x - 0.25)
                .with_scale_mode(ScaleMode::Iterations)
        ),
        Error::ScaleFn {
            x: 0.0,
            value: -0.25
        }
    );
}

// Names.

#[test]
fn mode_unknown_name() {
    assert_eq!(
        "Triangular".parse::<Mode>(),
        Err(Error::Unknown {
            parameter: "mode",
            value: "Triangular".to_owned(),
            expected: "triangular, triangular2, exp_range"
        })
    );
}

#[test]
fn mode_known_names() {
    let names = ["triangular", "triangular2", "exp_range"];
    let parsed: Result<Vec<Mode>, Error> = names.iter().map(|name| name.parse()).collect();
    assert_eq!(
        parsed,
        Ok(vec![Mode::Triangular, Mode::Triangular2, Mode::ExpRange])
    );
}

#[test]
fn scale_mode_unknown_name() {
    assert_eq!(
        "iteration".parse::<ScaleMode>(),
        Err(Error::Unknown {
            parameter: "scale_mode",
            value: "iteration".to_owned(),
            expected: "cycle, iterations"
        })
    );
}

// Stepping.

#[test]
fn step_to_negative_epoch() -> Result<(), Error> {
    let mut scheduler = CyclicLrConfig::new(0.5, 1.0, 10).init()?;
    scheduler.step_to(7)?;
    let before = snapshot(&scheduler);
    assert_eq!(
        scheduler.step_to(-1),
        Err(Error::Epoch {
            parameter: "epoch",
            value: -1,
            min: 0,
            max: MAX_EPOCH
        })
    );
    assert_eq!(snapshot(&scheduler), before);
    Ok(())
}

#[test]
fn step_to_past_max_epoch() -> Result<(), Error> {
    let mut scheduler = CyclicLrConfig::new(0.5, 1.0, 10).init()?;
    let before = snapshot(&scheduler);
    assert_eq!(
        scheduler.step_to(MAX_EPOCH + 1),
        Err(Error::Epoch {
            parameter: "epoch",
            value: MAX_EPOCH + 1,
            min: 0,
            max: MAX_EPOCH
        })
    );
    assert_eq!(snapshot(&scheduler), before);
    Ok(())
}

#[test]
fn step_past_max_epoch() -> Result<(), Error> {
    let mut scheduler = CyclicLrConfig::new(0.5, 1.0, 10)
        .with_cycle_momentum(true)
        .init()?;
    scheduler.step_to(MAX_EPOCH)?;
    let before = snapshot(&scheduler);
    assert_eq!(
        scheduler.step(),
        Err(Error::EpochOverflow { max: MAX_EPOCH })
    );
    assert_eq!(snapshot(&scheduler), before);
    Ok(())
}

#[test]
fn step_to_max_epoch_then_back() -> Result<(), Error> {
    let mut scheduler = CyclicLrConfig::new(0.5, 1.0, 10).init()?;
    scheduler.step_to(MAX_EPOCH)?;
    assert_eq!(scheduler.step_to(0), Ok(0.5));
    Ok(())
}

#[test]
fn step_refused_by_scale_fn() -> Result<(), Error> {
    // Valid in the first cycle, above 1 from the second (epoch 4 with 2 + 2 steps).
    let mut scheduler = CyclicLrConfig::new(0.5, 1.0, 2)
        .with_scale_fn(|cycle| if cycle < 2.0 { 1.0 } else { 1.5 })
        .init()?;
    scheduler.step_to(3)?;
    let before = snapshot(&scheduler);
    assert_eq!(scheduler.step(), Err(Error::ScaleFn { x: 2.0, value: 1.5 }));
    assert_eq!(snapshot(&scheduler), before);
    Ok(())
}

#[test]
fn step_to_refused_by_scale_fn() -> Result<(), Error> {
    let mut scheduler = CyclicLrConfig::new(0.5, 1.0, 2)
        .with_scale_fn(|it| if it < 100.0 { 1.0 } else { f64::NAN })
        .with_scale_mode(ScaleMode::Iterations)
        .init()?;
    let before = snapshot(&scheduler);
    let error = scheduler.step_to(100);
    assert!(
        matches!(error, Err(Error::ScaleFn { x: 100.0, value }) if value.is_nan()),
        "{error:?}"
    );
    assert_eq!(snapshot(&scheduler), before);
    Ok(())
}

#[test]
fn learning_rate_at_out_of_range() -> Result<(), Error> {
    let scheduler = CyclicLrConfig::new(0.5, 1.0, 10).init()?;
    assert_eq!(
        scheduler.learning_rate_at(-5),
        Err(Error::Epoch {
            parameter: "epoch",
            value: -5,
            min: 0,
            max: MAX_EPOCH
        })
    );
    Ok(())
}

// Messages name the parameter and the value.

#[test]
fn display_negative_learning_rate() {
    let error = refused(CyclicLrConfig::new(0.5, -0.001, 10));
    assert_eq!(
        error.to_string(),
        "max_learning_rate must not be negative, got -0.001"
    );
}

#[test]
fn display_not_finite_learning_rate() {
    let error = refused(CyclicLrConfig::new(f64::NAN, 1.0, 10));
    assert_eq!(
        error.to_string(),
        "base_learning_rate must be a finite number, got nan"
    );
}

#[test]
fn display_exp_gamma_in_python_notation() {
    let error = refused(
        CyclicLrConfig::new(0.5, 1.0, 10)
            .with_mode(Mode::ExpRange)
            .with_exp_gamma(1.5),
    );
    assert_eq!(error.to_string(), "exp_gamma must be in (0, 1], got 1.5");
}

#[test]
fn display_epoch_out_of_range() {
    let error = Error::Epoch {
        parameter: "epoch",
        value: -1,
        min: 0,
        max: MAX_EPOCH,
    };
    assert_eq!(
        error.to_string(),
        "epoch must be in 0..=9007199254740991, got -1"
    );
}

#[test]
fn display_group_lengths() {
    let error = refused(CyclicLrConfig::new(vec![0.1, 0.2], vec![1.0, 2.0, 3.0], 10));
    assert_eq!(
        error.to_string(),
        "max_learning_rate has 3 values, but base_learning_rate has 2: give one value per parameter group"
    );
}

#[test]
fn display_scale_fn() {
    let error = refused(CyclicLrConfig::new(0.5, 1.0, 10).with_scale_fn(|_| -1e-300));
    assert_eq!(
        error.to_string(),
        "scale_fn(1.0) returned -1e-300, but it must return a number in [0, 1]"
    );
}

#[test]
fn display_unknown_mode() {
    let error = "exp-range".parse::<Mode>().err();
    assert_eq!(
        error.map(|e| e.to_string()),
        Some(
            "mode must be one of triangular, triangular2, exp_range, got \"exp-range\"".to_owned()
        )
    );
}

// Loading a state.

fn paddle_seed() -> CyclicLrConfig {
    CyclicLrConfig::new(0.5, 1.0, 15).with_step_size_down(5)
}

#[test]
fn load_state_not_json() -> Result<(), Error> {
    let mut scheduler = paddle_seed().init()?;
    let before = snapshot(&scheduler);
    let error = scheduler.load_state_json(b"{\"last_epoch\": 3");
    assert!(matches!(error, Err(Error::StateFormat(_))), "{error:?}");
    assert_eq!(snapshot(&scheduler), before);
    Ok(())
}

#[test]
fn load_state_unknown_field() {
    let error = State::from_json(br#"{"last_epoch": 3, "last_lr": 0.6, "lr": 0.6}"#);
    assert!(matches!(error, Err(Error::StateFormat(_))), "{error:?}");
}

#[test]
fn load_state_version_unknown() -> Result<(), Error> {
    let mut scheduler = paddle_seed().init()?;
    let mut state = scheduler.state_dict();
    state.version = Some(2);
    assert_eq!(
        scheduler.set_state_dict(&state),
        Err(Error::StateVersion {
            found: 2,
            supported: 1
        })
    );
    Ok(())
}

#[test]
fn load_state_of_another_configuration() -> Result<(), Error> {
    let mut other = paddle_seed().with_step_size_down(6).init()?;
    other.step_to(3)?;
    let mut scheduler = paddle_seed().init()?;
    let before = snapshot(&scheduler);
    assert_eq!(
        scheduler.set_state_dict(&other.state_dict()),
        Err(Error::StateMismatch {
            field: "step_size_down".to_owned(),
            saved: "6".to_owned(),
            current: "5".to_owned()
        })
    );
    assert_eq!(snapshot(&scheduler), before);
    Ok(())
}

#[test]
fn load_state_last_epoch_negative() -> Result<(), Error> {
    let mut scheduler = paddle_seed().init()?;
    let before = snapshot(&scheduler);
    assert_eq!(
        scheduler.load_state_json(br#"{"last_epoch": -1, "last_lr": 0.5}"#),
        Err(Error::Epoch {
            parameter: "last_epoch",
            value: -1,
            min: 0,
            max: MAX_EPOCH
        })
    );
    assert_eq!(snapshot(&scheduler), before);
    Ok(())
}

#[test]
fn load_state_last_lr_not_this_schedules() -> Result<(), Error> {
    // Paddle's own state: epoch 3 of the seed schedule is 0.6, not 0.7.
    let mut scheduler = paddle_seed().init()?;
    let before = snapshot(&scheduler);
    assert_eq!(
        scheduler.load_state_json(br#"{"last_epoch": 3, "last_lr": 0.7}"#),
        Err(Error::StateMismatch {
            field: "last_lr".to_owned(),
            saved: "0.7".to_owned(),
            current: "0.6".to_owned()
        })
    );
    assert_eq!(snapshot(&scheduler), before);
    Ok(())
}

#[test]
fn load_state_paddle_format_accepted() -> Result<(), Error> {
    let mut scheduler = paddle_seed().init()?;
    scheduler.load_state_json(br#"{"last_epoch": 3, "last_lr": 0.6}"#)?;
    assert_eq!(scheduler.last_epoch(), 3);
    assert_eq!(scheduler.step(), Ok(0.6333333333333333));
    Ok(())
}

#[test]
fn load_state_group_count_differs() -> Result<(), Error> {
    let mut scheduler = CyclicLrConfig::new(vec![0.5, 0.25], 1.0, 10).init()?;
    let before = snapshot(&scheduler);
    assert_eq!(
        scheduler.load_state_json(br#"{"last_epoch": 0, "last_lr": [0.5, 0.25, 0.25]}"#),
        Err(Error::StateMismatch {
            field: "last_lr".to_owned(),
            saved: "[0.5, 0.25, 0.25]".to_owned(),
            current: "[0.5, 0.25]".to_owned()
        })
    );
    assert_eq!(snapshot(&scheduler), before);
    Ok(())
}

#[test]
fn load_state_momentum_into_scheduler_without_momentum() -> Result<(), Error> {
    let mut scheduler = paddle_seed().init()?;
    let before = snapshot(&scheduler);
    let error =
        scheduler.load_state_json(br#"{"last_epoch": 0, "last_lr": 0.5, "last_momentum": 0.9}"#);
    assert!(
        matches!(&error, Err(Error::StateMismatch { field, .. }) if field == "last_momentum"),
        "{error:?}"
    );
    assert_eq!(snapshot(&scheduler), before);
    Ok(())
}

#[test]
fn load_state_deeply_nested() {
    // serde_json's depth limit answers before the stack runs out.
    let json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let error = State::from_json(json.as_bytes());
    assert!(matches!(error, Err(Error::StateFormat(_))), "{error:?}");
}

#[test]
fn load_state_last_epoch_not_an_integer() {
    let error = State::from_json(br#"{"last_epoch": 1e300, "last_lr": 0.5}"#);
    assert!(matches!(error, Err(Error::StateFormat(_))), "{error:?}");
}
