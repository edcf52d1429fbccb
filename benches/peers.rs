//! This crate's side of `bench/peers.sh`: the seed's dynamic training step (Linear(10, 10), SGD,
//! a [10, 10] uniform batch, mean loss) with and without the scheduler, and the scheduler step
//! alone, timed inside the loop on the CPU with one intra-op thread.
//!
//! Prints one line per timed repeat, `sample <system> <metric> <value>`, which
//! `bench/peers.py table` turns into medians and ratios; `bench/peers.py run torch|paddle` prints
//! the same lines for the peers.
//!
//! `cargo bench --bench peers [-- --repeats R --steps N --scheduler-steps M]`. Like criterion's
//! benches it takes a name filter: `cargo bench NAME` runs it only when NAME is in "peers".

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use cyclic_lr::{CyclicLr, CyclicLrConfig};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// Training steps each loop runs before the other takes over (a few milliseconds).
const STEPS_PER_BLOCK: u32 = 100;

struct Options {
    repeats: usize,
    steps: u32,
    scheduler_steps: u32,
    warm_up_steps: u32,
}

/// `None` when a name filter excludes this bench.
fn parse_options() -> anyhow::Result<Option<Options>> {
    let mut options = Options {
        repeats: 5,
        steps: 2_000,
        scheduler_steps: 100_000,
        warm_up_steps: 500,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> anyhow::Result<u32> {
            let text = args
                .next()
                .with_context(|| format!("{name} needs a value"))?;
            let n: u32 = text
                .parse()
                .with_context(|| format!("{name} must be a positive integer, got {text:?}"))?;
            if n == 0 {
                bail!("{name} must be a positive integer, got 0");
            }
            Ok(n)
        };
        match arg.as_str() {
            "--repeats" => options.repeats = value("--repeats")? as usize,
            "--steps" => options.steps = value("--steps")?,
            "--scheduler-steps" => options.scheduler_steps = value("--scheduler-steps")?,
            "--warm-up-steps" => options.warm_up_steps = value("--warm-up-steps")?,
            // What cargo passes to every bench target.
            "--bench" => {}
            filter if !filter.starts_with('-') => {
                if !"peers".contains(filter) {
                    return Ok(None);
                }
            }
            other => bail!("unknown option {other}"),
        }
    }
    Ok(Some(options))
}

/// The seed's model and optimizer, with the seed's scheduler (base 0.5, max 1.0, 15 steps up,
/// 5 down) when `with_scheduler`.
struct Seed {
    _vs: nn::VarStore,
    linear: nn::Linear,
    opt: nn::Optimizer,
    scheduler: Option<CyclicLr>,
}

impl Seed {
    fn new(with_scheduler: bool) -> anyhow::Result<Self> {
        let vs = nn::VarStore::new(Device::Cpu);
        let linear = nn::linear(vs.root(), 10, 10, Default::default());
        let scheduler = CyclicLrConfig::new(0.5, 1.0, 15)
            .with_step_size_down(5)
            .init()?;
        let opt = nn::Sgd::default().build(&vs, scheduler.last_lr())?;
        Ok(Seed {
            _vs: vs,
            linear,
            opt,
            scheduler: with_scheduler.then_some(scheduler),
        })
    }

    fn train_step(&mut self) -> anyhow::Result<()> {
        let x = Tensor::rand([10, 10], (Kind::Float, Device::Cpu));
        let loss = self.linear.forward(&x).mean(Kind::Float);
        self.opt.backward_step(&loss);
        if let Some(scheduler) = &mut self.scheduler {
            black_box(scheduler.step_with(&mut self.opt)?);
        }
        Ok(())
    }

    /// Microseconds per training step over `steps` steps.
    fn time_train_steps(&mut self, steps: u32) -> anyhow::Result<f64> {
        let start = Instant::now();
        for _ in 0..steps {
            self.train_step()?;
        }
        Ok(start.elapsed().as_secs_f64() * 1e6 / f64::from(steps))
    }
}

/// Nanoseconds per call over `steps` calls of `step` on `scheduler`.
fn time_scheduler_steps(
    steps: u32,
    scheduler: &mut CyclicLr,
    mut step: impl FnMut(&mut CyclicLr) -> Result<f64, cyclic_lr::Error>,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    for _ in 0..steps {
        black_box(step(scheduler)?);
    }
    Ok(start.elapsed().as_secs_f64() * 1e9 / f64::from(steps))
}

fn sample(system: &str, metric: &str, value: f64) {
    println!("sample {system} {metric} {value:.4}");
}

fn run(options: &Options) -> anyhow::Result<()> {
    tch::set_num_threads(1);
    tch::set_num_interop_threads(1);
    let mut raw = Seed::new(false)?;
    let mut scheduled = Seed::new(true)?;
    for _ in 0..options.warm_up_steps {
        raw.train_step()?;
        scheduled.train_step()?;
    }
    // The two loops alternate in short blocks, so that both see the same machine load; the
    // overhead is the ratio within each repeat, which drifts far less than a ratio of medians.
    let blocks = options.steps.div_ceil(STEPS_PER_BLOCK);
    let block_steps = options.steps.div_ceil(blocks);
    for _ in 0..options.repeats {
        let (mut raw_us, mut scheduled_us) = (0.0, 0.0);
        for block in 0..blocks {
            // Each goes first in half the blocks: whatever the first of a pair pays (or is
            // spared), both pay it alike.
            if block % 2 == 0 {
                raw_us += raw.time_train_steps(block_steps)?;
                scheduled_us += scheduled.time_train_steps(block_steps)?;
            } else {
                scheduled_us += scheduled.time_train_steps(block_steps)?;
                raw_us += raw.time_train_steps(block_steps)?;
            }
        }
        let (raw_us, scheduled_us) = (raw_us / f64::from(blocks), scheduled_us / f64::from(blocks));
        sample("tch", "train_step_us", raw_us);
        sample("cyclic-lr", "train_step_us", scheduled_us);
        sample(
            "cyclic-lr",
            "scheduler_overhead_pct",
            (scheduled_us / raw_us - 1.0) * 100.0,
        );
    }

    // The scheduler steps of the training loop above, alone: the next rate set on the SGD
    // optimizer (what PyTorch's `CyclicLR.step()` does too), and the next rate only (all that
    // Paddle's does; its optimizer asks the scheduler for the rate at each step).
    let Some(scheduler) = &mut scheduled.scheduler else {
        bail!("the scheduled loop has a scheduler");
    };
    let opt = &mut scheduled.opt;
    for _ in 0..options.repeats {
        let with_optimizer =
            time_scheduler_steps(options.scheduler_steps, scheduler, |s| s.step_with(opt))?;
        let alone = time_scheduler_steps(options.scheduler_steps, scheduler, CyclicLr::step)?;
        sample("cyclic-lr", "scheduler_step_ns", with_optimizer);
        sample("cyclic-lr", "next_rate_ns", alone);
    }
    Ok(())
}

fn main() -> ExitCode {
    let result = parse_options().and_then(|options| match options {
        Some(options) => run(&options),
        None => Ok(()),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("peers: error: {error:#}");
            ExitCode::from(2)
        }
    }
}
