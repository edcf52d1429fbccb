//! This crate's side of `bench/peers.sh`: the seed's dynamic training step (Linear(10, 10), SGD,
//! a [10, 10] uniform batch, mean loss) with and without the scheduler, and the scheduler step
//! alone, timed inside the loop on the CPU with one intra-op thread.
//!
//! Every figure is timed over short blocks of steps (about a millisecond each), and its median
//! over the blocks is printed. On a shared machine most blocks run without being descheduled,
//! so the median is the time of an undisturbed step even when the machine is busy. With
//! `--samples` it prints every block instead, as `sample <system> <metric> <value per step>`:
//! `bench/peers.py table` takes the medians, and `bench/peers.py run torch|paddle` prints the
//! same lines for the peers.
//!
//! `cargo bench --bench peers [-- --samples --blocks B --block-steps N
//! --scheduler-block-steps M --warm-up-steps W --scheduled-call CALL]`. Like criterion's
//! benches it takes a name filter: `cargo bench NAME` runs it only when NAME is in "peers".
//!
//! `--scheduled-call` takes the scheduled loop apart: what it calls after each optimizer step
//! is `step_with` (the default: the next rate, set on the optimizer), `step` (the next rate
//! only), `set_lr` (tch's setter alone, with a constant rate) or `nothing`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use cyclic_lr::{CyclicLr, CyclicLrConfig};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// What the scheduled loop calls after each optimizer step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ScheduledCall {
    StepWith,
    Step,
    SetLr,
    Nothing,
}

impl ScheduledCall {
    fn name(self) -> &'static str {
        match self {
            ScheduledCall::StepWith => "step_with",
            ScheduledCall::Step => "step",
            ScheduledCall::SetLr => "set_lr",
            ScheduledCall::Nothing => "nothing",
        }
    }
}

struct Options {
    /// Print every block's figures rather than their medians.
    samples: bool,
    /// Timed blocks per figure.
    blocks: u32,
    /// Training steps per block.
    block_steps: u32,
    /// Scheduler steps per block.
    scheduler_block_steps: u32,
    warm_up_steps: u32,
    scheduled_call: ScheduledCall,
}

/// `None` when a name filter excludes this bench.
fn parse_options() -> anyhow::Result<Option<Options>> {
    let mut options = Options {
        samples: false,
        blocks: 200,
        block_steps: 20,
        scheduler_block_steps: 5_000,
        warm_up_steps: 500,
        scheduled_call: ScheduledCall::StepWith,
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
            "--samples" => options.samples = true,
            "--blocks" => options.blocks = value("--blocks")?,
            "--block-steps" => options.block_steps = value("--block-steps")?,
            "--scheduler-block-steps" => {
                options.scheduler_block_steps = value("--scheduler-block-steps")?
            }
            "--warm-up-steps" => options.warm_up_steps = value("--warm-up-steps")?,
            "--scheduled-call" => {
                options.scheduled_call = match args.next().as_deref() {
                    Some("step_with") => ScheduledCall::StepWith,
                    Some("step") => ScheduledCall::Step,
                    Some("set_lr") => ScheduledCall::SetLr,
                    Some("nothing") => ScheduledCall::Nothing,
                    Some(other) => bail!(
                        "--scheduled-call takes step_with, step, set_lr or nothing, got {other}"
                    ),
                    None => bail!("--scheduled-call needs a value"),
                }
            }
            // What cargo passes to every bench target.
            "--bench" => {}
            filter if !filter.starts_with('-') => {
                if !"peers".contains(filter) {
                    return Ok(None);
                }
            }
            // `cargo bench -- OPTIONS` hands criterion's options to every bench as well.
            other => eprintln!("peers: ignoring {other}, not an option of this bench"),
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
    call: ScheduledCall,
}

impl Seed {
    fn new(with_scheduler: bool, call: ScheduledCall) -> anyhow::Result<Self> {
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
            call,
        })
    }

    fn train_step(&mut self) -> anyhow::Result<()> {
        let x = Tensor::rand([10, 10], (Kind::Float, Device::Cpu));
        let loss = self.linear.forward(&x).mean(Kind::Float);
        self.opt.backward_step(&loss);
        if let Some(scheduler) = &mut self.scheduler {
            match self.call {
                ScheduledCall::StepWith => {
                    black_box(scheduler.step_with(&mut self.opt)?);
                }
                ScheduledCall::Step => {
                    black_box(scheduler.step()?);
                }
                ScheduledCall::SetLr => self.opt.set_lr(black_box(0.5)),
                ScheduledCall::Nothing => {}
            }
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

/// Every block's figure, by system and metric.
#[derive(Default)]
struct Samples(BTreeMap<(&'static str, &'static str), Vec<f64>>);

impl Samples {
    fn add(&mut self, system: &'static str, metric: &'static str, value: f64) {
        self.0.entry((system, metric)).or_default().push(value);
    }

    fn median(&self, system: &'static str, metric: &'static str) -> f64 {
        let Some(values) = self.0.get(&(system, metric)) else {
            return f64::NAN;
        };
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let middle = sorted.len() / 2;
        if sorted.len() % 2 == 1 {
            sorted[middle]
        } else {
            (sorted[middle - 1] + sorted[middle]) / 2.0
        }
    }

    fn print_all(&self) {
        for ((system, metric), values) in &self.0 {
            for value in values {
                println!("sample {system} {metric} {value:.4}");
            }
        }
    }

    fn print_medians(&self, options: &Options) {
        println!(
            "peers: the seed's training loop on the CPU, one thread; medians of {} blocks \
             (bench/peers.sh sets them beside PyTorch's and Paddle's)",
            options.blocks
        );
        println!(
            "  training step, tch alone         {:>8.2} µs",
            self.median("tch", "train_step_us")
        );
        println!(
            "  training step, tch + {:<11} {:>8.2} µs ({:+.2} % in interleaved pairs)",
            options.scheduled_call.name(),
            self.median("cyclic-lr", "train_step_us"),
            self.median("cyclic-lr", "scheduler_overhead_pct")
        );
        println!(
            "  scheduler step, rate set on SGD  {:>8.1} ns",
            self.median("cyclic-lr", "scheduler_step_ns")
        );
        println!(
            "  next rate alone (step())         {:>8.1} ns",
            self.median("cyclic-lr", "next_rate_ns")
        );
    }
}

fn run(options: &Options) -> anyhow::Result<Samples> {
    let mut samples = Samples::default();
    tch::set_num_threads(1);
    tch::set_num_interop_threads(1);
    let mut raw = Seed::new(false, options.scheduled_call)?;
    let mut scheduled = Seed::new(true, options.scheduled_call)?;
    for _ in 0..options.warm_up_steps {
        raw.train_step()?;
        scheduled.train_step()?;
    }

    // The two loops alternate block by block, so that each pair of blocks sees the same
    // machine; the overhead is the median of the ratios within pairs. Each loop goes first in
    // half the pairs, so whatever the first of a pair pays, both pay alike.
    for block in 0..options.blocks {
        let (raw_us, scheduled_us) = if block % 2 == 0 {
            let raw_us = raw.time_train_steps(options.block_steps)?;
            (raw_us, scheduled.time_train_steps(options.block_steps)?)
        } else {
            let scheduled_us = scheduled.time_train_steps(options.block_steps)?;
            (raw.time_train_steps(options.block_steps)?, scheduled_us)
        };
        samples.add("tch", "train_step_us", raw_us);
        samples.add("cyclic-lr", "train_step_us", scheduled_us);
        samples.add(
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
    let steps = options.scheduler_block_steps;
    for _ in 0..options.blocks {
        let with_optimizer = time_scheduler_steps(steps, scheduler, |s| s.step_with(opt))?;
        let alone = time_scheduler_steps(steps, scheduler, CyclicLr::step)?;
        samples.add("cyclic-lr", "scheduler_step_ns", with_optimizer);
        samples.add("cyclic-lr", "next_rate_ns", alone);
    }
    Ok(samples)
}

fn main() -> ExitCode {
    let result = parse_options().and_then(|options| {
        let Some(options) = options else {
            return Ok(());
        };
        let samples = run(&options)?;
        if options.samples {
            samples.print_all();
        } else {
            samples.print_medians(&options);
        }
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("peers: error: {error:#}");
            ExitCode::from(2)
        }
    }
}
