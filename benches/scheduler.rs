//! What the scheduler costs: computing the next rate, setting it on a tch optimizer, and its
//! share of the seed's training step. `cargo bench --bench scheduler`; each group takes a few
//! seconds, the whole file well under two minutes.
//!
//! Everything runs on the CPU with one intra-op thread, as the side-by-side with PyTorch and
//! Paddle does (`bench/peers.sh`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use cyclic_lr::{CyclicLr, CyclicLrConfig, Error, Mode, ScaleMode, TchOptimizer};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// Scheduler benches restart from a fresh scheduler every this many steps, so that the epochs
/// stay those of a training run however many iterations criterion asks for: exp_range's power
/// and triangular2's halving depend on the epoch (triangular2 stops computing anything past
/// cycle 1024, exp_range's power underflows to 0 after a few hundred thousand steps).
const EPOCHS_PER_RUN: u64 = 100_000;

/// Times `iters` calls of `step`, each run of [`EPOCHS_PER_RUN`] on a clone of `fresh`.
fn time_steps(
    iters: u64,
    fresh: &CyclicLr,
    mut step: impl FnMut(&mut CyclicLr) -> Result<f64, Error>,
) -> Duration {
    let mut elapsed = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let run = left.min(EPOCHS_PER_RUN);
        let mut scheduler = fresh.clone();
        let start = Instant::now();
        for _ in 0..run {
            black_box(step(&mut scheduler)).expect("the benched schedule steps without error");
        }
        elapsed += start.elapsed();
        left -= run;
    }
    elapsed
}

/// The seed's schedule (base 0.5, max 1.0, 15 steps up, 5 down) in `mode`.
fn seed_config() -> CyclicLrConfig {
    CyclicLrConfig::new(0.5, 1.0, 15).with_step_size_down(5)
}

fn next_rate(c: &mut Criterion) {
    let mut group = c.benchmark_group("next_rate");
    let modes = [
        ("triangular", seed_config()),
        ("triangular2", seed_config().with_mode(Mode::Triangular2)),
        (
            "exp_range",
            seed_config()
                .with_mode(Mode::ExpRange)
                .with_exp_gamma(0.9999),
        ),
        (
            "scale_fn",
            seed_config()
                .with_scale_fn(|x| 1.0 / (1.0 + x / 1000.0))
                .with_scale_mode(ScaleMode::Iterations),
        ),
    ];
    for (name, config) in modes {
        let fresh = config.init().expect("the benched configuration is valid");
        group.bench_function(name, |b| {
            b.iter_custom(|iters| time_steps(iters, &fresh, CyclicLr::step))
        });
    }
    // exp_range's scale is Python's `gamma ** it`, C's pow, which the rate must share to be
    // bit for bit the peers': most of that mode's time is this call.
    let mut iterations = 0.0;
    group.bench_function("exp_range_pow_alone", |b| {
        b.iter(|| {
            iterations = if iterations < EPOCHS_PER_RUN as f64 {
                iterations + 1.0
            } else {
                0.0
            };
            black_box(0.9999_f64).powf(black_box(iterations))
        })
    });
    group.finish();
}

/// A Linear(10, 10) per parameter group, and an SGD optimizer over them that has seen its
/// variables (tch hands them to libtorch at the first `zero_grad` or `step`).
fn sgd_over_groups(groups: usize, momentum: f64) -> (nn::VarStore, TchOptimizer) {
    let vs = nn::VarStore::new(Device::Cpu);
    for g in 0..groups {
        nn::linear(
            vs.root().set_group(g) / format!("linear{g}"),
            10,
            10,
            Default::default(),
        );
    }
    let sgd = nn::Sgd {
        momentum,
        ..Default::default()
    };
    let mut opt = TchOptimizer::new(sgd, &vs, 0.5).expect("libtorch builds an SGD optimizer");
    opt.zero_grad();
    (vs, opt)
}

fn step_with_sgd(c: &mut Criterion) {
    tch::set_num_threads(1);
    let mut group = c.benchmark_group("step_with_sgd");

    // What every step below pays at least once: tch's own setter, an FFI call.
    let (_vs, mut opt) = sgd_over_groups(1, 0.0);
    let mut lr = 0.5;
    group.bench_function("tch_set_lr_alone", |b| {
        b.iter(|| {
            lr = if lr == 0.5 { 0.75 } else { 0.5 };
            opt.set_lr(black_box(lr));
        })
    });

    for groups in [1, 4] {
        for cycle_momentum in [false, true] {
            let (base, max): (Vec<f64>, Vec<f64>) = (0..groups)
                .map(|g| (0.5 / (g + 1) as f64, 1.0 / (g + 1) as f64))
                .unzip();
            let config = if groups == 1 {
                CyclicLrConfig::new(base[0], max[0], 15)
            } else {
                CyclicLrConfig::new(base, max, 15)
            };
            let fresh = config
                .with_step_size_down(5)
                .with_cycle_momentum(cycle_momentum)
                .init()
                .expect("the benched configuration is valid");
            let (_vs, mut opt) = sgd_over_groups(groups, 0.9);
            let name = if cycle_momentum {
                "cycle_momentum"
            } else {
                "lr_only"
            };
            group.bench_function(BenchmarkId::new(name, format!("{groups}_groups")), |b| {
                b.iter_custom(|iters| time_steps(iters, &fresh, |s| s.step_with(&mut opt)))
            });
        }
    }

    // The plain optimizer (no group count to check) as the seed example drives it.
    let fresh = seed_config()
        .init()
        .expect("the seed configuration is valid");
    let (_vs, opt) = sgd_over_groups(1, 0.0);
    let mut opt = opt.into_inner();
    group.bench_function("seed_plain_optimizer", |b| {
        b.iter_custom(|iters| time_steps(iters, &fresh, |s| s.step_with(&mut opt)))
    });
    group.finish();
}

/// The seed's dynamic training step, on the CPU with one intra-op thread: a [10, 10] uniform
/// batch through Linear(10, 10), mean loss, backward, SGD step; then, with the scheduler, the
/// next rate set on the optimizer.
fn training_step(c: &mut Criterion) {
    tch::set_num_threads(1);
    let mut group = c.benchmark_group("training_step");
    group.measurement_time(Duration::from_secs(4));

    for with_scheduler in [false, true] {
        let vs = nn::VarStore::new(Device::Cpu);
        let linear = nn::linear(vs.root(), 10, 10, Default::default());
        let mut scheduler = seed_config()
            .init()
            .expect("the seed configuration is valid");
        let mut opt = nn::Sgd::default()
            .build(&vs, scheduler.last_lr())
            .expect("libtorch builds an SGD optimizer");
        let name = if with_scheduler {
            "with_scheduler"
        } else {
            "raw_tch"
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                let x = Tensor::rand([10, 10], (Kind::Float, Device::Cpu));
                let loss = linear.forward(&x).mean(Kind::Float);
                opt.backward_step(&loss);
                if with_scheduler {
                    black_box(scheduler.step_with(&mut opt))
                        .expect("the seed schedule steps without error");
                }
            })
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = next_rate, step_with_sgd, training_step
}
criterion_main!(benches);
