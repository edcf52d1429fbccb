//! Once warmed up, stepping a scheduler allocates nothing on the Rust heap, with or without
//! an optimizer to drive (libtorch's own C++ allocations do not go through Rust's allocator
//! and are not counted). Verbose is off: printing the line allocates it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use anyhow::{Result, ensure};
use cyclic_lr::{CyclicLr, CyclicLrConfig, LearningRateTarget, Mode, ScaleMode, TchOptimizer};
use tch::Device;
use tch::nn::{self, OptimizerConfig};

/// Counts the allocations of the current thread, so that the test harness's other threads
/// do not disturb a measurement.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the thread's counter may already be gone while the thread exits.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

const CALLS: i64 = 1000;

/// Runs `f` once to warm up, then `CALLS` times, and returns the allocations of the latter.
fn allocations_in(mut f: impl FnMut(i64) -> Result<()>) -> Result<u64> {
    f(0)?;
    let before = allocations();
    for i in 1..=CALLS {
        f(i)?;
    }
    Ok(allocations() - before)
}

/// The configurations measured: one group or four, momentum cycled or not, every scaling.
fn configs(groups: usize) -> Vec<CyclicLrConfig> {
    let (base, max): (Vec<f64>, Vec<f64>) = (0..groups)
        .map(|g| (0.1 / (g + 1) as f64, 1.0 / (g + 1) as f64))
        .unzip();
    let momentum: Vec<f64> = (0..groups).map(|g| 0.95 - 0.05 * g as f64).collect();
    let config = if groups == 1 {
        CyclicLrConfig::new(base[0], max[0], 7)
    } else {
        CyclicLrConfig::new(base, max, 7)
    };
    let config = config.with_step_size_down(3);
    vec![
        config.clone(),
        config.clone().with_mode(Mode::Triangular2),
        config
            .clone()
            .with_mode(Mode::ExpRange)
            .with_exp_gamma(0.999),
        config
            .clone()
            .with_scale_fn(|it| 1.0 / (1.0 + it))
            .with_scale_mode(ScaleMode::Iterations),
        config.clone().with_cycle_momentum(true),
        if groups == 1 {
            config.with_cycle_momentum(true)
        } else {
            config.with_cycle_momentum(true).with_max_momentum(momentum)
        },
    ]
}

fn schedulers(groups: usize) -> Result<Vec<CyclicLr>> {
    Ok(configs(groups)
        .into_iter()
        .map(CyclicLrConfig::init)
        .collect::<Result<_, _>>()?)
}

#[test]
fn step_allocates_nothing() -> Result<()> {
    for groups in [1, 4] {
        for mut scheduler in schedulers(groups)? {
            let n = allocations_in(|_| Ok(scheduler.step().map(|_| ())?))?;
            ensure!(n == 0, "{n} allocations, {groups} groups: {scheduler:?}");
        }
    }
    Ok(())
}

#[test]
fn step_to_allocates_nothing() -> Result<()> {
    for groups in [1, 4] {
        for mut scheduler in schedulers(groups)? {
            // Jumps back and forth, far into the schedule.
            let n =
                allocations_in(|i| Ok(scheduler.step_to(i * i * 7919 % 1_000_003).map(|_| ())?))?;
            ensure!(n == 0, "{n} allocations, {groups} groups: {scheduler:?}");
        }
    }
    Ok(())
}

/// A variable store with one small layer per parameter group.
fn store(groups: usize) -> nn::VarStore {
    let vs = nn::VarStore::new(Device::Cpu);
    for g in 0..groups {
        let _ = vs
            .root()
            .set_group(g)
            .var(&format!("w{g}"), &[4], nn::Init::Const(1.0));
    }
    vs
}

fn check_step_with<T: LearningRateTarget>(scheduler: &mut CyclicLr, opt: &mut T) -> Result<()> {
    let n = allocations_in(|_| Ok(scheduler.step_with(opt).map(|_| ())?))?;
    ensure!(n == 0, "{n} allocations: {scheduler:?}");
    Ok(())
}

#[test]
fn step_with_sgd_allocates_nothing() -> Result<()> {
    for groups in [1, 4] {
        let vs = store(groups);
        for mut scheduler in schedulers(groups)? {
            let momentum = nn::Sgd {
                momentum: 0.9,
                ..Default::default()
            };
            let mut opt = TchOptimizer::new(momentum, &vs, scheduler.last_lr())?;
            check_step_with(&mut scheduler, &mut opt)?;
        }
    }
    Ok(())
}

#[test]
fn step_with_plain_sgd_allocates_nothing() -> Result<()> {
    // A plain optimizer takes one shared rate, and no momentum.
    let vs = store(4);
    for mut scheduler in schedulers(1)?.into_iter().filter(|s| !s.cycles_momentum()) {
        let mut opt = nn::Sgd::default().build(&vs, scheduler.last_lr())?;
        check_step_with(&mut scheduler, &mut opt)?;
    }
    Ok(())
}

#[test]
fn step_with_adam_allocates_nothing() -> Result<()> {
    let vs = store(4);
    let mut scheduler = CyclicLrConfig::new(vec![1e-3; 4], 1e-2, 5)
        .with_cycle_momentum(true)
        .init()?;
    let mut opt = TchOptimizer::new(nn::Adam::default(), &vs, scheduler.last_lr())?;
    check_step_with(&mut scheduler, &mut opt)
}

#[test]
fn counter_sees_allocations() -> Result<()> {
    // The measurement itself can fail: an allocation in the measured code is counted.
    let n = allocations_in(|i| {
        std::hint::black_box(vec![i; 3]);
        Ok(())
    })?;
    ensure!(n == CALLS as u64, "{n}");
    Ok(())
}
