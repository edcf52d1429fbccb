//! Prints a cyclical learning-rate schedule as CSV, one row per step, to check it before
//! training; `--plot FILE` also draws it.
//!
//! ```sh
//! cargo run --release --example schedule -- \
//!     --base-learning-rate 0.5 --max-learning-rate 1 --step-size-up 15 --step-size-down 5 \
//!     --steps 200 --plot schedule.svg
//! ```

#[path = "common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use cyclic_lr::{CyclicLr, CyclicLrConfig, Mode, PerGroup, PyFloat};

use common::plot::{Figure, Panel, Series};

/// One value per parameter group (an alias, so that clap takes the whole list from one flag).
type Groups = Vec<f64>;

/// Prints a CyclicLR schedule (PaddlePaddle's `paddle.optimizer.lr.CyclicLR`, with PyTorch's
/// per-group bounds and momentum cycling) as CSV on stdout, one row per step.
///
/// Row 0 is the state right after construction; each later row is one `step()`, or
/// `step(epoch)` at a `--jump` row. Columns: `step,last_epoch,lr` for one group without
/// momentum cycling, else `step,last_epoch,lr_g0,..,lr_gN,mom_g0,..,mom_gN`. Numbers are
/// written as Python's `repr` writes them.
#[derive(Parser, Debug)]
#[command(
    after_help = "Defaults are Paddle's: --step-size-down equals --step-size-up, --mode triangular, \
--exp-gamma 1, --last-epoch -1, no momentum cycling; the momentum bounds default to PyTorch's \
0.8 and 0.9. A single value stands for every parameter group."
)]
struct Args {
    /// Lower learning-rate bound, one value or one per parameter group (`0.01,0.001`).
    #[arg(long, value_name = "X[,X..]", value_parser = common::parse_list, allow_negative_numbers = true)]
    base_learning_rate: Groups,

    /// Upper learning-rate bound, one value or one per parameter group.
    #[arg(long, value_name = "X[,X..]", value_parser = common::parse_list, allow_negative_numbers = true)]
    max_learning_rate: Groups,

    /// Steps of the rising half of a cycle.
    #[arg(long, value_name = "N")]
    step_size_up: u64,

    /// Steps of the falling half of a cycle [default: --step-size-up].
    #[arg(long, value_name = "N")]
    step_size_down: Option<u64>,

    /// Amplitude scaling: triangular, triangular2 (halved each cycle) or exp_range
    /// (times exp_gamma^epoch).
    #[arg(long, value_name = "MODE", default_value_t = Mode::Triangular)]
    mode: Mode,

    /// The decay of exp_range mode, in (0, 1].
    #[arg(
        long,
        value_name = "G",
        default_value_t = 1.0,
        allow_negative_numbers = true
    )]
    exp_gamma: f64,

    /// The epoch training resumes after: row 0 is the state at epoch K + 1.
    #[arg(long, value_name = "K", default_value_t = -1, allow_negative_numbers = true)]
    last_epoch: i64,

    /// Rows after row 0.
    #[arg(long, value_name = "N", default_value_t = 100)]
    steps: u64,

    /// At row STEP, jump to EPOCH (Paddle's `step(epoch)`) instead of advancing by one;
    /// repeatable.
    #[arg(long, value_name = "STEP=EPOCH", value_parser = parse_jump)]
    jump: Vec<(u64, i64)>,

    /// Cycle the momentum too, opposite to the learning rate (PyTorch's `cycle_momentum`).
    #[arg(long)]
    cycle_momentum: bool,

    /// Lower momentum bound, reached at the learning rate's peak; needs
    /// --cycle-momentum [default: 0.8].
    #[arg(long, value_name = "X[,X..]", value_parser = common::parse_list, requires = "cycle_momentum", allow_negative_numbers = true)]
    base_momentum: Option<Groups>,

    /// Upper momentum bound, reached at the learning rate's base; needs
    /// --cycle-momentum [default: 0.9].
    #[arg(long, value_name = "X[,X..]", value_parser = common::parse_list, requires = "cycle_momentum", allow_negative_numbers = true)]
    max_momentum: Option<Groups>,

    /// Also draw the learning rate (and momentum) against the step into FILE, .svg or .png.
    #[arg(long, value_name = "FILE", value_parser = parse_plot_path)]
    plot: Option<PathBuf>,
}

/// `STEP=EPOCH`, with STEP a row of the output.
fn parse_jump(text: &str) -> Result<(u64, i64), String> {
    let (step, epoch) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not STEP=EPOCH"))?;
    let step = step
        .trim()
        .parse()
        .map_err(|_| format!("{step:?} is not a row number"))?;
    if step == 0 {
        return Err(
            "row 0 is the state after construction; use --last-epoch to start elsewhere".to_owned(),
        );
    }
    let epoch = epoch
        .trim()
        .parse()
        .map_err(|_| format!("{epoch:?} is not an epoch"))?;
    Ok((step, epoch))
}

fn parse_plot_path(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg" | "png") => Ok(path),
        _ => Err("the plot file must end in .svg or .png".to_owned()),
    }
}

/// A single value is shared by every group, as Paddle's float argument is.
fn per_group(values: &[f64]) -> PerGroup {
    match values {
        [value] => PerGroup::All(*value),
        _ => PerGroup::Each(values.to_vec()),
    }
}

/// The schedule to print: a checked scheduler at row 0 and the jumps of later rows.
struct Plan {
    scheduler: CyclicLr,
    steps: u64,
    jumps: BTreeMap<u64, i64>,
}

impl Plan {
    /// Builds the scheduler and walks the whole schedule once, so that whatever the library
    /// refuses (a configuration, an epoch out of range) is reported before any output.
    fn new(args: &Args) -> anyhow::Result<Plan> {
        let mut config = CyclicLrConfig::new(
            per_group(&args.base_learning_rate),
            per_group(&args.max_learning_rate),
            args.step_size_up,
        )
        .with_mode(args.mode)
        .with_exp_gamma(args.exp_gamma)
        .with_last_epoch(args.last_epoch)
        .with_cycle_momentum(args.cycle_momentum);
        if let Some(step_size_down) = args.step_size_down {
            config = config.with_step_size_down(step_size_down);
        }
        if let Some(base_momentum) = &args.base_momentum {
            config = config.with_base_momentum(per_group(base_momentum));
        }
        if let Some(max_momentum) = &args.max_momentum {
            config = config.with_max_momentum(per_group(max_momentum));
        }
        let scheduler = config.init()?;

        let mut jumps = BTreeMap::new();
        for &(step, epoch) in &args.jump {
            if step > args.steps {
                anyhow::bail!(
                    "--jump {step}={epoch}: row {step} is past the last row (--steps {})",
                    args.steps
                );
            }
            if jumps.insert(step, epoch).is_some() {
                anyhow::bail!("--jump {step}=..: row {step} is given more than one jump");
            }
        }
        let plan = Plan {
            scheduler,
            steps: args.steps,
            jumps,
        };
        plan.walk(|_, _| Ok(()))?;
        Ok(plan)
    }

    /// Visits the scheduler at every row, on a copy of it.
    fn walk(
        &self,
        mut visit: impl FnMut(u64, &CyclicLr) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut scheduler = self.scheduler.clone();
        visit(0, &scheduler)?;
        for row in 1..=self.steps {
            match self.jumps.get(&row) {
                Some(&epoch) => scheduler
                    .step_to(epoch)
                    .with_context(|| format!("--jump {row}={epoch}"))?,
                None => scheduler.step().with_context(|| format!("row {row}"))?,
            };
            visit(row, &scheduler)?;
        }
        Ok(())
    }

    /// One group without momentum has Paddle's columns; otherwise PyTorch's, one per group.
    fn header(&self) -> String {
        let groups = self.scheduler.group_count();
        if groups == 1 && !self.scheduler.cycles_momentum() {
            return "step,last_epoch,lr".to_owned();
        }
        let mut header = "step,last_epoch".to_owned();
        for g in 0..groups {
            let _ = write!(header, ",lr_g{g}");
        }
        if self.scheduler.cycles_momentum() {
            for g in 0..groups {
                let _ = write!(header, ",mom_g{g}");
            }
        }
        header
    }

    /// Writes the CSV; a reader that stops early (`| head`) ends the output quietly.
    fn write_csv(&self, out: impl Write) -> anyhow::Result<()> {
        match self.try_write_csv(out) {
            Err(e) if is_broken_pipe(&e) => Ok(()),
            other => other.context("cannot write the schedule to stdout"),
        }
    }

    fn try_write_csv(&self, out: impl Write) -> anyhow::Result<()> {
        let mut out = BufWriter::new(out);
        writeln!(out, "{}", self.header())?;
        self.walk(|row, scheduler| {
            write!(out, "{row},{}", scheduler.last_epoch())?;
            for value in scheduler
                .last_lrs()
                .iter()
                .chain(scheduler.last_momentums())
            {
                write!(out, ",{}", PyFloat(*value))?;
            }
            writeln!(out)?;
            Ok(())
        })?;
        out.flush()?;
        Ok(())
    }

    fn figure(&self, args: &Args) -> anyhow::Result<Figure> {
        let groups = self.scheduler.group_count();
        // The panel's axis already says what is drawn; the legend tells the groups apart.
        let label = |kind: &str, g: usize| {
            if groups == 1 {
                kind.to_owned()
            } else {
                format!("group {g}")
            }
        };
        let mut lrs = vec![Vec::new(); groups];
        let mut momentums = vec![Vec::new(); self.scheduler.last_momentums().len()];
        self.walk(|row, scheduler| {
            let x = row as f64;
            for (points, &lr) in lrs.iter_mut().zip(scheduler.last_lrs()) {
                points.push((x, lr));
            }
            for (points, &momentum) in momentums.iter_mut().zip(scheduler.last_momentums()) {
                points.push((x, momentum));
            }
            Ok(())
        })?;
        let series = |kind: &str, lines: Vec<Vec<(f64, f64)>>| {
            lines
                .into_iter()
                .enumerate()
                .map(|(g, points)| Series {
                    label: label(kind, g),
                    points,
                })
                .collect()
        };
        let mut panels = vec![Panel {
            y_label: "learning rate".to_owned(),
            series: series("learning rate", lrs),
            markers: Vec::new(),
        }];
        if !momentums.is_empty() {
            panels.push(Panel {
                y_label: "momentum".to_owned(),
                series: series("momentum", momentums),
                markers: Vec::new(),
            });
        }
        let step_size_down = self.scheduler.schedule().step_size_down();
        Ok(Figure {
            title: format!(
                "CyclicLR {}: {} steps up, {step_size_down} down",
                args.mode, args.step_size_up
            ),
            x_label: "step".to_owned(),
            log_x: false,
            panels,
        })
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<io::Error>())
        .any(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

fn main() -> ExitCode {
    let args: Args = common::parse_args();
    let plan = match Plan::new(&args) {
        Ok(plan) => plan,
        Err(e) => {
            // A schedule the library refuses is a bad argument, like a bad flag.
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    common::exit(run(&args, &plan))
}

fn run(args: &Args, plan: &Plan) -> anyhow::Result<()> {
    plan.write_csv(io::stdout().lock())?;
    if let Some(path) = &args.plot {
        common::plot::draw(path, &plan.figure(args)?)?;
    }
    Ok(())
}
