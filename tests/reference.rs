//! Every rate equals Paddle 3.3.1's and PyTorch 2.13's, to the bit, on the reference traces in
//! `tests/reference/`.
//!
//! Each trace was written by the peer itself from a case of `paddle_cases.json` or
//! `torch_cases.json`; the test builds the same scheduler from the same case with the public
//! API, checks row 0 against the state right after construction, then takes one `step()` per
//! row (`step_to(epoch)` where the case jumps) and compares the bits of every group's
//! learning rate and momentum. To regenerate the traces, in `tests/reference/`, with a venv
//! made by `pip install paddlepaddle==3.3.1 torch==2.13.0`:
//!
//! ```text
//! python gen_paddle.py paddle_cases.json paddle
//! python gen_torch.py torch_cases.json torch
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use cyclic_lr::{CyclicLr, CyclicLrConfig, Mode, PyFloat, ScaleMode};
use serde_json::{Map, Value};

/// The system a trace comes from.
#[derive(Clone, Copy, Debug)]
enum Peer {
    Paddle,
    Torch,
}

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Peer::Paddle => "paddle",
            Peer::Torch => "torch",
        }
    }

    fn folder(self) -> PathBuf {
        reference_folder().join(self.name())
    }

    fn cases_file(self) -> PathBuf {
        reference_folder().join(format!("{}_cases.json", self.name()))
    }
}

fn reference_folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference")
}

/// The custom scale functions of `tests/reference/scale_fns.py`, under the same names.
fn scale_fn(name: &str) -> Result<fn(f64) -> f64> {
    Ok(match name {
        "half" => |_| 0.5,
        "inv_cycle" => |x| 1.0 / x,
        "cos_iter" => |x| 0.5 * (1.0 + (x / 50.0).cos()),
        "exp_decay_iter" => |x| (-x / 1000.0).exp(),
        _ => bail!("unknown scale function {name:?}: add it here and in scale_fns.py"),
    })
}

/// A case of a `*_cases.json` file, as the peer was given it.
struct Case {
    config: CyclicLrConfig,
    steps: usize,
    /// Rows where the peer called `step(epoch)` instead of `step()`.
    jumps: BTreeMap<usize, i64>,
}

fn read_cases(peer: Peer) -> Result<Vec<Value>> {
    let path = peer.cases_file();
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    match serde_json::from_str(&text)? {
        Value::Array(cases) => Ok(cases),
        _ => bail!("{} is not a list of cases", path.display()),
    }
}

fn load_case(peer: Peer, name: &str) -> Result<Case> {
    let cases = read_cases(peer)?;
    let case = cases
        .iter()
        .find(|case| case["name"] == name)
        .with_context(|| format!("no case {name:?} in {}", peer.cases_file().display()))?;
    let case = object(case, "case")?;
    for key in case.keys() {
        let known = match peer {
            Peer::Paddle => ["name", "kwargs", "steps", "jumps", "verbose"].as_slice(),
            Peer::Torch => ["name", "kwargs", "steps", "jumps", "groups", "optimizer"].as_slice(),
        };
        ensure!(
            known.contains(&key.as_str()),
            "case {name}: unknown field {key:?}"
        );
    }
    let kwargs = object(field(case, "kwargs")?, "kwargs")?;
    let config = match peer {
        Peer::Paddle => paddle_config(kwargs)?,
        Peer::Torch => torch_config(case, kwargs)?,
    };
    let mut jumps = BTreeMap::new();
    if let Some(found) = case.get("jumps") {
        for (row, epoch) in object(found, "jumps")? {
            jumps.insert(row.parse()?, integer(epoch, "jump epoch")?);
        }
    }
    Ok(Case {
        config,
        steps: usize::try_from(unsigned(field(case, "steps")?, "steps")?)?,
        jumps,
    })
}

/// `paddle.optimizer.lr.CyclicLR(**kwargs)`.
fn paddle_config(kwargs: &Map<String, Value>) -> Result<CyclicLrConfig> {
    let mut config = CyclicLrConfig::new(
        number(field(kwargs, "base_learning_rate")?, "base_learning_rate")?,
        number(field(kwargs, "max_learning_rate")?, "max_learning_rate")?,
        unsigned(field(kwargs, "step_size_up")?, "step_size_up")?,
    );
    for (key, value) in kwargs {
        config = match key.as_str() {
            "base_learning_rate" | "max_learning_rate" | "step_size_up" => config,
            "exp_gamma" => config.with_exp_gamma(number(value, key)?),
            _ => common_setting(config, key, value)?,
        };
    }
    Ok(config)
}

/// `torch.optim.lr_scheduler.CyclicLR(optimizer, **kwargs)` with one list entry per group and
/// PyTorch's defaults: momentum cycled, between 0.8 and 0.9.
fn torch_config(case: &Map<String, Value>, kwargs: &Map<String, Value>) -> Result<CyclicLrConfig> {
    match case.get("optimizer").map(Value::as_str) {
        None | Some(Some("sgd" | "adam")) => {}
        Some(other) => bail!("unknown optimizer {other:?}"),
    }
    let Value::Array(groups) = field(case, "groups")? else {
        bail!("groups is not a list");
    };
    let mut bounds = [vec![], vec![], vec![], vec![]];
    for group in groups {
        let group = object(group, "group")?;
        for key in group.keys() {
            let known = ["base_lr", "max_lr", "base_momentum", "max_momentum"];
            ensure!(known.contains(&key.as_str()), "unknown group field {key:?}");
        }
        bounds[0].push(number(field(group, "base_lr")?, "base_lr")?);
        bounds[1].push(number(field(group, "max_lr")?, "max_lr")?);
        let momentum = |key, default| group.get(key).map_or(Ok(default), |v| number(v, key));
        bounds[2].push(momentum("base_momentum", 0.8)?);
        bounds[3].push(momentum("max_momentum", 0.9)?);
    }
    let [base_lr, max_lr, base_momentum, max_momentum] = bounds;
    let mut config = CyclicLrConfig::new(
        base_lr,
        max_lr,
        unsigned(field(kwargs, "step_size_up")?, "step_size_up")?,
    )
    .with_cycle_momentum(true)
    .with_base_momentum(base_momentum)
    .with_max_momentum(max_momentum);
    for (key, value) in kwargs {
        config = match key.as_str() {
            "step_size_up" => config,
            "gamma" => config.with_exp_gamma(number(value, key)?),
            "cycle_momentum" => config.with_cycle_momentum(
                value
                    .as_bool()
                    .with_context(|| format!("{key} is not a bool"))?,
            ),
            _ => common_setting(config, key, value)?,
        };
    }
    Ok(config)
}

/// The keyword arguments Paddle and PyTorch name alike.
fn common_setting(config: CyclicLrConfig, key: &str, value: &Value) -> Result<CyclicLrConfig> {
    let text = |value: &Value| {
        value
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("{key} is not a string"))
    };
    Ok(match key {
        "step_size_down" => config.with_step_size_down(unsigned(value, key)?),
        "mode" => config.with_mode(text(value)?.parse::<Mode>()?),
        "scale_fn" => config.with_scale_fn(scale_fn(&text(value)?)?),
        "scale_mode" => config.with_scale_mode(text(value)?.parse::<ScaleMode>()?),
        "last_epoch" => config.with_last_epoch(integer(value, key)?),
        _ => bail!("unknown keyword argument {key:?}"),
    })
}

fn field<'a>(object: &'a Map<String, Value>, key: &str) -> Result<&'a Value> {
    object.get(key).with_context(|| format!("missing {key:?}"))
}

fn object<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>> {
    value
        .as_object()
        .with_context(|| format!("{what} is not an object"))
}

fn number(value: &Value, what: &str) -> Result<f64> {
    value
        .as_f64()
        .with_context(|| format!("{what} is not a number"))
}

fn integer(value: &Value, what: &str) -> Result<i64> {
    value
        .as_i64()
        .with_context(|| format!("{what} is not an integer"))
}

fn unsigned(value: &Value, what: &str) -> Result<u64> {
    value
        .as_u64()
        .with_context(|| format!("{what} is not a non-negative integer"))
}

/// One row of a trace: `step,last_epoch,lr..,mom..`.
struct Row {
    step: usize,
    last_epoch: i64,
    lrs: Vec<f64>,
    momentums: Vec<f64>,
}

fn read_trace(peer: Peer, name: &str) -> Result<Vec<Row>> {
    let path = peer.folder().join(format!("{name}.csv"));
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().context("empty trace")?.split(',').collect();
    ensure!(
        header.starts_with(&["step", "last_epoch"]),
        "{name}: unexpected header {header:?}"
    );
    let lr_columns = header
        .iter()
        .filter(|h| **h == "lr" || h.starts_with("lr_g"))
        .count();
    let momentum_columns = header.iter().filter(|h| h.starts_with("mom_g")).count();
    ensure!(
        2 + lr_columns + momentum_columns == header.len(),
        "{name}: unexpected header {header:?}"
    );
    lines
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            ensure!(cells.len() == header.len(), "{name}: bad row {line:?}");
            // Python's repr is the shortest text that reads back to the same f64, and Rust's
            // parse rounds correctly, so this is exactly the peer's value.
            let values = cells[2..]
                .iter()
                .map(|cell| cell.parse::<f64>())
                .collect::<Result<Vec<f64>, _>>()
                .with_context(|| format!("{name}: bad number in {line:?}"))?;
            Ok(Row {
                step: cells[0].parse()?,
                last_epoch: cells[1].parse()?,
                lrs: values[..lr_columns].to_vec(),
                momentums: values[lr_columns..].to_vec(),
            })
        })
        .collect()
}

/// Replays a case: construction for row 0, then one step (or jump) per row.
fn replay(
    name: &str,
    case: Case,
    mut check_row: impl FnMut(usize, &CyclicLr) -> Result<()>,
) -> Result<()> {
    let mut scheduler = case
        .config
        .init()
        .with_context(|| format!("case {name}: building the scheduler"))?;
    check_row(0, &scheduler)?;
    for row in 1..=case.steps {
        match case.jumps.get(&row) {
            Some(&epoch) => scheduler.step_to(epoch),
            None => scheduler.step(),
        }
        .with_context(|| format!("case {name}, row {row}: stepping"))?;
        check_row(row, &scheduler)?;
    }
    Ok(())
}

/// The shared runner of the trace tests: every rate and momentum of every row, bit for bit.
fn check_trace(peer: Peer, name: &str) -> Result<()> {
    let trace = read_trace(peer, name)?;
    let case = load_case(peer, name)?;
    ensure!(
        trace.len() == case.steps + 1,
        "case {name}: {} rows for {} steps",
        trace.len(),
        case.steps
    );
    replay(name, case, |row, scheduler| {
        let expected = &trace[row];
        ensure!(
            expected.step == row,
            "case {name}: row {row} is numbered {}",
            expected.step
        );
        ensure!(
            scheduler.last_epoch() == expected.last_epoch,
            "case {name}, row {row}: last_epoch {} in {}, {} here",
            expected.last_epoch,
            peer.name(),
            scheduler.last_epoch()
        );
        compare(peer, name, row, "lr", &expected.lrs, scheduler.last_lrs())?;
        compare(
            peer,
            name,
            row,
            "momentum",
            &expected.momentums,
            scheduler.last_momentums(),
        )
    })
}

fn compare(
    peer: Peer,
    name: &str,
    row: usize,
    what: &str,
    expected: &[f64],
    actual: &[f64],
) -> Result<()> {
    ensure!(
        expected.len() == actual.len(),
        "case {name}, row {row}: {} {what} values in {}, {} here",
        expected.len(),
        peer.name(),
        actual.len()
    );
    for (group, (&want, &got)) in expected.iter().zip(actual).enumerate() {
        ensure!(
            want.to_bits() == got.to_bits(),
            "case {name}, row {row}, group {group}: {what} {} in {} ({:#018x}), {} here ({:#018x})",
            PyFloat(want),
            peer.name(),
            want.to_bits(),
            PyFloat(got),
            got.to_bits()
        );
    }
    Ok(())
}

/// Paddle's verbose log of a case (`<name>.verbose.txt`): after construction and after each
/// step, `verbose_line()` is Paddle's printed line, byte for byte.
fn check_verbose(name: &str) -> Result<()> {
    let path = Peer::Paddle.folder().join(format!("{name}.verbose.txt"));
    let log = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let lines: Vec<&str> = log.lines().collect();
    let mut rows = 0;
    replay(name, load_case(Peer::Paddle, name)?, |row, scheduler| {
        rows += 1;
        let printed = lines.get(row).with_context(|| {
            format!(
                "case {name}: Paddle printed {} lines, row {row} has none",
                lines.len()
            )
        })?;
        let line = scheduler.verbose_line();
        ensure!(
            line == *printed,
            "case {name}, row {row}: Paddle printed {printed:?}, verbose_line() is {line:?}"
        );
        Ok(())
    })?;
    ensure!(
        rows == lines.len(),
        "case {name}: Paddle printed {} lines for {rows} rows",
        lines.len()
    );
    Ok(())
}

/// One test per case, named after it, and the list of the names.
macro_rules! trace_tests {
    ($peer:expr; $($(#[doc = $doc:literal])* $name:ident,)*) => {
        pub const CASES: &[&str] = &[$(stringify!($name)),*];
        $(
            $(#[doc = $doc])*
            #[test]
            fn $name() -> anyhow::Result<()> {
                super::check_trace($peer, stringify!($name))
            }
        )*
    };
}

/// Traces of `paddle.optimizer.lr.CyclicLR` (`python gen_paddle.py paddle_cases.json paddle`).
mod paddle {
    use super::Peer;

    trace_tests! { Peer::Paddle;
        /// The documentation's seed: base 0.5, max 1.0, 15 up, 5 down, 200 steps.
        seed_triangular,
        /// The seed in triangular2: the amplitude halves every cycle.
        seed_triangular2,
        /// The seed in exp_range, gamma 0.99.
        seed_exp_range,
        /// `step_size_down` defaults to `step_size_up`.
        symmetric_default_down,
        /// The default `step_size_down` in triangular2.
        default_down_triangular2,
        /// A restart with `last_epoch=7`: the first rate is epoch 8's.
        restart_last_epoch_7,
        /// A restart at a cycle's end (`last_epoch=19`), triangular2: the first rate is cycle 2's base.
        restart_last_epoch_19_triangular2,
        /// A restart with `last_epoch=1000` in exp_range: the decay counts from epoch 0.
        restart_last_epoch_1000_exp_range,
        /// A restart, then jumps back before it and forward past it.
        restart_then_jumps,
        /// `step(epoch)` forward, backwards, to the current epoch twice, and to 0.
        jumps_forward_and_back,
        /// Jumps across triangular2 cycles, each back to its own amplitude.
        jumps_triangular2,
        /// Jumps to 10^9, 2^40 and up to 2^53 - 1 (MAX_EPOCH, reached by `step()` too), and back.
        huge_epochs_triangular,
        /// Huge epochs with a cycle of 7, whose phase `epoch / 7` rounds.
        huge_epochs_odd_cycle,
        /// Huge epochs in exp_range: the amplitude has decayed to nothing.
        huge_epochs_exp_range,
        /// `step_size_up=1, step_size_down=1` up to 2^53 - 1, where the phase rounds to the base.
        unit_steps_to_max_epoch,
        /// One step up, 1000 down, with jumps over the cycle's end.
        asymmetric_up1_down1000,
        /// 1000 steps up, one down, with jumps over the peak.
        asymmetric_up1000_down1,
        /// `base > max`: the rate falls first (a negative amplitude).
        base_above_max_triangular,
        /// `base > max` in triangular2, past cycle 1024 (Paddle raises; the limit is the base).
        base_above_max_triangular2,
        /// `base > max` in exp_range.
        base_above_max_exp_range,
        /// triangular2 through cycles 1023 to 1029, then 10^6 and 2^53 - 1: the base where Paddle
        /// raises OverflowError (the trace holds the limit, base_learning_rate).
        triangular2_past_cycle_1024,
        /// triangular2 with base 0 around cycle 1024: subnormal rates, then 0.
        triangular2_zero_base_subnormal,
        /// exp_range with gamma 0.5 and base 0: `gamma^epoch` subnormal, then 0.
        exp_range_underflow_zero_base,
        /// exp_range with gamma 0.001: the rate settles at the base within a few steps.
        exp_range_small_gamma,
        /// exp_range with gamma 1.0: triangular.
        exp_range_gamma_one,
        /// A constant custom scale of the cycle.
        scale_fn_half_cycle,
        /// A constant custom scale of the iterations.
        scale_fn_half_iterations,
        /// `1 / cycle`, up to cycle ~9 * 10^14 (epoch 2^53 - 1).
        scale_fn_inv_cycle,
        /// A cosine of the iterations, up to 2^53 - 1.
        scale_fn_cos_iter,
        /// An exponential decay of the iterations, to 0.
        scale_fn_exp_decay_iter,
        /// A `scale_fn` wins over `mode="exp_range"`, in the default scale mode `cycle`.
        scale_fn_overrides_mode,
        /// Rates printed in scientific notation (`1e-05`), and epoch 2^53 - 1.
        verbose_small_rates,
    }
}

/// Traces of `torch.optim.lr_scheduler.CyclicLR` (`python gen_torch.py torch_cases.json torch`),
/// for per-group bounds and momentum cycling.
mod torch {
    use super::Peer;

    trace_tests! { Peer::Torch;
        /// Two groups, triangular2, momentum bounds of each group's own.
        torch_two_groups_momentum,
        /// Adam's beta1 cycled in exp_range, default `step_size_down`.
        torch_adam_beta1,
        /// Three groups, triangular, per-group momentum bounds, jumps.
        torch_three_groups_triangular_momentum,
        /// Three groups in exp_range with momentum, jumps back and forward.
        torch_three_groups_exp_range_momentum,
        /// Three groups of Adam, triangular2 near cycle 1000, per-group beta1 bounds.
        torch_three_groups_triangular2_adam,
        /// Three groups without momentum cycling, jumps.
        torch_three_groups_no_momentum,
        /// One group without momentum cycling (`lr` column).
        torch_one_group_no_momentum,
        /// A group with `base_lr > max_lr` and `base_momentum > max_momentum`, one with equal bounds.
        torch_three_groups_base_above_max,
        /// A cosine of the iterations scales rates and momenta of three groups.
        torch_scale_fn_cos_iter_momentum,
        /// `1 / cycle` scales rates and momenta of three groups.
        torch_scale_fn_inv_cycle_momentum,
        /// A restart with `last_epoch=25`, three groups with momentum.
        torch_restart_last_epoch_25,
        /// Jumps to 10^9, 2^40 and 2^53 - 1 with three groups and momentum.
        torch_huge_epochs_momentum,
        /// `step_size_up=1, step_size_down=1` up to 2^53 - 1, where the phase rounds to the base.
        torch_unit_steps_to_max_epoch,
        /// A cycle of 4 up to 2^53 - 1, where PyTorch's `floor(1 + epoch / 4)` is one cycle past
        /// Paddle's `1 + epoch // 4`; the rate is the base either way.
        torch_max_epoch_power_of_two_cycle,
    }
}

/// Paddle's `verbose=True` output (`<name>.verbose.txt`, written by `gen_paddle.py` for the
/// cases marked `"verbose": true`).
mod paddle_verbose {
    pub const CASES: &[&str] = &["seed_triangular", "verbose_small_rates"];

    /// The seed's lines: `Epoch 0: CyclicLR set learning rate to 0.5.` ...
    #[test]
    fn seed_triangular() -> anyhow::Result<()> {
        super::check_verbose("seed_triangular")
    }

    /// Scientific notation (`1e-05`) and epoch 2^53 - 1.
    #[test]
    fn verbose_small_rates() -> anyhow::Result<()> {
        super::check_verbose("verbose_small_rates")
    }
}

/// Every file in `tests/reference/{paddle,torch}` and every case of the case files has its
/// test above: no trace can be left out silently.
#[test]
fn every_reference_file_and_case_has_a_test() -> Result<()> {
    let mut untested = Vec::new();
    for (peer, cases) in [(Peer::Paddle, paddle::CASES), (Peer::Torch, torch::CASES)] {
        let tested: BTreeSet<&str> = cases.iter().copied().collect();
        for entry in fs::read_dir(peer.folder())? {
            let file = entry?.file_name();
            let file = file.to_string_lossy();
            let covered = match (file.strip_suffix(".csv"), file.strip_suffix(".verbose.txt")) {
                (Some(case), _) => tested.contains(case),
                (None, Some(case)) => {
                    matches!(peer, Peer::Paddle) && paddle_verbose::CASES.contains(&case)
                }
                (None, None) => false,
            };
            if !covered {
                untested.push(format!("{}/{file}", peer.name()));
            }
        }
        for case in read_cases(peer)? {
            let name = case["name"].as_str().context("a case without a name")?;
            if !tested.contains(name) {
                untested.push(format!("{}_cases.json: {name}", peer.name()));
            }
            if case.get("verbose") == Some(&Value::Bool(true))
                && !paddle_verbose::CASES.contains(&name)
            {
                untested.push(format!("{}_cases.json: {name} (verbose)", peer.name()));
            }
        }
    }
    ensure!(untested.is_empty(), "no test for {untested:?}");
    Ok(())
}
