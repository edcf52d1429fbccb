//! The LR range test on a small MLP (2-32-32-3, ReLU) classifying three interleaved spirals
//! (a seeded synthetic set, a fifth held out), then two trainings of the same length from the
//! same initial weights and batch order, both SGD with momentum 0.9: CyclicLR on the suggested
//! bounds, and a fixed rate.
//!
//! ```sh
//! cargo run --release --example lr_range_test -- --plot lr_range_test.png
//! ```
//!
//! It prints why the test ended, the suggested bounds and both held-out accuracies, and writes
//! the series to `lr_range_test.csv` (`--csv`). The fixed rate is the one fastai's `lr_find`
//! would pick from the same test (the rate at the lowest smoothed loss divided by 10), so both
//! trainings take their rates from the same curve; `--fixed-lr` tries another.

#[path = "common/mod.rs"]
mod common;

use std::f64::consts::PI;
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use cyclic_lr::CyclicLr;
use cyclic_lr::range_test::{RangeTestConfig, RangeTestResult, StopReason, Suggestion, Sweep};
use cyclic_lr::train::standard_normal;
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use common::plot::{Figure, Panel, Series};

/// LR range test (Smith 2017, section 3.3) on three spirals, then CyclicLR on the suggested
/// bounds against a fixed rate.
#[derive(Parser, Debug)]
struct Args {
    /// Seed of the data set, the weights and the batch order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Points per spiral (a fifth of them held out).
    #[arg(long, default_value_t = 1000)]
    points: usize,
    /// Standard deviation of the noise on each point's angle, in radians.
    #[arg(long, default_value_t = 0.2)]
    noise: f64,
    /// Steps of the range test.
    #[arg(long, default_value_t = 200)]
    range_steps: usize,
    /// First rate of the range test.
    #[arg(long, default_value_t = 1e-4)]
    start_lr: f64,
    /// Last rate of the range test.
    #[arg(long, default_value_t = 10.0)]
    end_lr: f64,
    /// How the range test's rate rises.
    #[arg(long, value_enum, default_value_t = SweepArg::Exponential)]
    sweep: SweepArg,
    /// Training steps of each of the two trainings.
    #[arg(long, default_value_t = 3000)]
    steps: u64,
    /// CyclicLR's step_size_up (default: steps / 6, three whole cycles).
    #[arg(long)]
    step_size_up: Option<u64>,
    /// The fixed rate to compare with (default: fastai's choice, the rate at the lowest
    /// smoothed loss divided by 10).
    #[arg(long)]
    fixed_lr: Option<f64>,
    /// Minibatch size.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Where to write the series as CSV.
    #[arg(long, default_value = "lr_range_test.csv")]
    csv: PathBuf,
    /// Also draw loss against rate into this file (.svg or .png).
    #[arg(long, value_parser = parse_plot_path)]
    plot: Option<PathBuf>,
    /// cpu or cuda (default: cuda when available).
    #[arg(long, value_parser = common::parse_device)]
    device: Option<Device>,
}

/// Refused when parsing rather than after the range test has run.
fn parse_plot_path(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg" | "png") => Ok(path),
        _ => Err(format!("{text:?} must end in .svg or .png")),
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum SweepArg {
    Linear,
    Exponential,
}

/// Three classes of points on interleaved spirals (CS231n's toy set), with Gaussian noise.
struct Spirals {
    train: (Tensor, Tensor),
    held_out: (Tensor, Tensor),
}

const CLASSES: i64 = 3;

impl Spirals {
    fn new(points: usize, noise: f64, rng: &mut StdRng, device: Device) -> Spirals {
        let mut samples: Vec<([f32; 2], i64)> = Vec::with_capacity(points * CLASSES as usize);
        for class in 0..CLASSES {
            for i in 0..points {
                let r = i as f64 / points as f64;
                let angle = class as f64 * 2.0 * PI / 3.0 + 4.0 * r + noise * standard_normal(rng);
                samples.push(([(r * angle.sin()) as f32, (r * angle.cos()) as f32], class));
            }
        }
        samples.shuffle(rng);
        let held_out = samples.split_off(samples.len() * 4 / 5);
        let tensors = |set: &[([f32; 2], i64)]| {
            let x: Vec<f32> = set.iter().flat_map(|(x, _)| *x).collect();
            let y: Vec<i64> = set.iter().map(|(_, y)| *y).collect();
            (
                Tensor::from_slice(&x).view([-1, 2]).to_device(device),
                Tensor::from_slice(&y).to_device(device),
            )
        };
        Spirals {
            train: tensors(&samples),
            held_out: tensors(&held_out),
        }
    }
}

fn mlp(path: &nn::Path) -> impl Module + use<> {
    nn::seq()
        .add(nn::linear(path / "fc1", 2, 32, Default::default()))
        .add_fn(|x| x.relu())
        .add(nn::linear(path / "fc2", 32, 32, Default::default()))
        .add_fn(|x| x.relu())
        .add(nn::linear(path / "fc3", 32, CLASSES, Default::default()))
}

/// Minibatches of the training set in a seeded order, reshuffled each epoch.
struct Batches {
    order: Vec<i64>,
    next: usize,
    size: usize,
    rng: StdRng,
}

impl Batches {
    fn new(len: i64, size: usize, seed: u64) -> Batches {
        Batches {
            order: (0..len).collect(),
            next: usize::MAX,
            size,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    fn next(&mut self, (x, y): &(Tensor, Tensor)) -> (Tensor, Tensor) {
        if self.next.saturating_add(self.size) > self.order.len() {
            self.order.shuffle(&mut self.rng);
            self.next = 0;
        }
        let index =
            Tensor::from_slice(&self.order[self.next..self.next + self.size]).to_device(x.device());
        self.next += self.size;
        (x.index_select(0, &index), y.index_select(0, &index))
    }
}

/// Held-out accuracy.
fn accuracy(model: &impl Module, (x, y): &(Tensor, Tensor)) -> anyhow::Result<f64> {
    let predicted = tch::no_grad(|| model.forward(x).argmax(-1, false));
    Ok(f64::try_from(
        predicted
            .eq_tensor(y)
            .to_kind(Kind::Double)
            .mean(Kind::Double),
    )?)
}

/// A bar on stderr when it is a terminal, else nothing.
fn progress_bar(len: u64, prefix: &'static str) -> anyhow::Result<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return Ok(ProgressBar::hidden());
    }
    let bar = ProgressBar::new(len).with_prefix(prefix).with_style(
        ProgressStyle::with_template("{prefix:>13} [{bar:30}] {pos}/{len} {msg}")?
            .progress_chars("=> "),
    );
    Ok(bar)
}

/// Trains `steps` minibatch steps with SGD (momentum 0.9) from the weights in `vs`, the rate
/// set by `scheduler` after each step, or fixed at `lr` without one.
fn train(
    vs: &nn::VarStore,
    model: &impl Module,
    data: &Spirals,
    args: &Args,
    lr: f64,
    mut scheduler: Option<CyclicLr>,
    label: &'static str,
) -> anyhow::Result<f64> {
    let mut opt = nn::Sgd {
        momentum: 0.9,
        ..Default::default()
    }
    .build(vs, lr)?;
    let mut batches = Batches::new(data.train.0.size()[0], args.batch_size, args.seed + 1);
    let bar = progress_bar(args.steps, label)?;
    for _ in 0..args.steps {
        let (x, y) = batches.next(&data.train);
        let loss = model.forward(&x).cross_entropy_for_logits(&y);
        opt.backward_step(&loss);
        if let Some(scheduler) = &mut scheduler {
            scheduler.step_with(&mut opt)?;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    accuracy(model, &data.held_out)
}

fn range_test(
    vs: &nn::VarStore,
    model: &impl Module,
    data: &Spirals,
    args: &Args,
) -> anyhow::Result<RangeTestResult> {
    let sweep = match args.sweep {
        SweepArg::Linear => Sweep::Linear,
        SweepArg::Exponential => Sweep::Exponential,
    };
    let test = RangeTestConfig::new(args.start_lr, args.end_lr, args.range_steps)
        .with_sweep(sweep)
        .init()?;
    // A throwaway optimizer: its momentum buffers are the one thing the test cannot restore.
    let mut opt = nn::Sgd {
        momentum: 0.9,
        ..Default::default()
    }
    .build(vs, args.start_lr)?;
    let mut batches = Batches::new(data.train.0.size()[0], args.batch_size, args.seed + 1);
    let bar = progress_bar(test.steps() as u64, "LR range test")?;
    let result = test.run_with_progress(
        vs,
        &mut opt,
        args.start_lr,
        |opt, _lr| {
            let (x, y) = batches.next(&data.train);
            let loss = model.forward(&x).cross_entropy_for_logits(&y);
            opt.backward_step(&loss);
            f64::try_from(&loss)
        },
        |_, point| {
            bar.set_message(format!("lr {:.3e}", point.learning_rate));
            bar.inc(1);
        },
    );
    bar.finish_and_clear();
    Ok(result?)
}

fn write_csv(result: &RangeTestResult, path: &Path) -> anyhow::Result<()> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = BufWriter::new(file);
    result
        .write_csv(&mut out)
        .and_then(|()| out.flush())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn plot(result: &RangeTestResult, suggestion: &Suggestion, path: &Path) -> anyhow::Result<()> {
    // The point that stopped the test can be orders of magnitude above the rest: leave out
    // losses above twice the first smoothed one, as fastai leaves out the last points.
    let first = result.points()[0].smoothed_loss;
    let series = |label: &str, value: fn(&cyclic_lr::range_test::RangeTestPoint) -> f64| Series {
        label: label.to_owned(),
        points: result
            .points()
            .iter()
            .map(|p| (p.learning_rate, value(p)))
            .filter(|&(_, loss)| loss <= 2.0 * first)
            .collect(),
    };
    common::plot::draw(
        path,
        &Figure {
            title: "LR range test: MLP on three spirals".to_owned(),
            x_label: "learning rate".to_owned(),
            log_x: true,
            panels: vec![Panel {
                y_label: "training loss".to_owned(),
                series: vec![
                    series("loss", |p| p.loss),
                    series("smoothed loss", |p| p.smoothed_loss),
                ],
                markers: vec![
                    (
                        suggestion.base_learning_rate,
                        format!("base {:.3e}", suggestion.base_learning_rate),
                    ),
                    (
                        suggestion.max_learning_rate,
                        format!("max {:.3e}", suggestion.max_learning_rate),
                    ),
                    (
                        suggestion.minimum_learning_rate,
                        format!(
                            "lowest smoothed loss {:.3e}",
                            suggestion.minimum_learning_rate
                        ),
                    ),
                ],
            }],
        },
    )
}

fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    // A 32-wide MLP gains nothing from intra-op threads, and on a busy machine their
    // spin-waiting made it tens of times slower.
    tch::set_num_threads(1);
    let device = args.device.unwrap_or_else(Device::cuda_if_available);
    let mut rng = StdRng::seed_from_u64(args.seed);
    let data = Spirals::new(args.points, args.noise, &mut rng, device);
    tch::manual_seed(args.seed as i64);
    let vs = nn::VarStore::new(device);
    let model = mlp(&vs.root());

    let result = range_test(&vs, &model, &data, &args)?;
    let points = result.points();
    let last = points[points.len() - 1];
    match result.stop() {
        StopReason::Diverged { best_smoothed_loss } => println!(
            "range test: stopped after {} of {} steps at lr {:.4e}: smoothed loss {:.4} > 4 x best {:.4}",
            points.len(),
            args.range_steps,
            last.learning_rate,
            last.smoothed_loss,
            best_smoothed_loss
        ),
        StopReason::NonFiniteLoss => println!(
            "range test: stopped after {} of {} steps at lr {:.4e}: loss {}",
            points.len(),
            args.range_steps,
            last.learning_rate,
            last.loss
        ),
        _ => println!(
            "range test: all {} steps up to lr {:.4e}, the smoothed loss never passed 4 x its best",
            points.len(),
            last.learning_rate
        ),
    }
    write_csv(&result, &args.csv)?;
    println!("series written to {}", args.csv.display());
    let suggestion = result
        .suggestion()
        .context("no suggestion: the loss never fell (try a lower --start-lr)")?;
    let lowest = points[suggestion.minimum_index];
    println!(
        "lowest smoothed loss {:.4} at lr {:.4e}",
        lowest.smoothed_loss, lowest.learning_rate
    );
    println!(
        "suggested bounds: base_learning_rate {:.4e}, max_learning_rate {:.4e}",
        suggestion.base_learning_rate, suggestion.max_learning_rate
    );
    if let Some(path) = &args.plot {
        plot(&result, &suggestion, path)?;
        println!("plot written to {}", path.display());
    }

    // The fixed-rate run starts from the same weights, which the range test has restored.
    let mut fixed_vs = nn::VarStore::new(device);
    let fixed_model = mlp(&fixed_vs.root());
    fixed_vs.copy(&vs)?;

    let step_size_up = args.step_size_up.unwrap_or((args.steps / 6).max(1));
    let scheduler = result.cyclic_lr_config(step_size_up)?.init()?;
    let cyclic = train(
        &vs,
        &model,
        &data,
        &args,
        scheduler.last_lr(),
        Some(scheduler),
        "CyclicLR",
    )?;
    let fixed_lr = args
        .fixed_lr
        .unwrap_or(suggestion.minimum_learning_rate / 10.0);
    let fixed = train(
        &fixed_vs,
        &fixed_model,
        &data,
        &args,
        fixed_lr,
        None,
        "fixed rate",
    )?;
    println!(
        "CyclicLR {:.4e}..{:.4e}, step_size_up {step_size_up}, {} steps: held-out accuracy {:.2}%",
        suggestion.base_learning_rate,
        suggestion.max_learning_rate,
        args.steps,
        100.0 * cyclic
    );
    println!(
        "fixed rate {fixed_lr:.4e}{}, {} steps: held-out accuracy {:.2}%",
        if args.fixed_lr.is_none() {
            " (lowest smoothed loss / 10, fastai's lr_min)"
        } else {
            ""
        },
        args.steps,
        100.0 * fixed
    );
    println!("took {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn main() -> ExitCode {
    common::exit(run(common::parse_args()))
}
