//! The seed's dynamic-graph example (`examples/dynamic.rs`, `cyclic_lr::train::dynamic`): its
//! output, its determinism, its checkpoints and how it refuses a bad one.
//!
//! Most tests call the library's loop and read what it wrote; those about exit codes and
//! stderr run the example's binary, which `cargo test` builds beside the tests. To run these
//! alone, build it first: `cargo build --release --example dynamic` then
//! `cargo test --release --test dynamic` (`cargo test --example dynamic` would build the
//! example as a test harness instead).
//!
//! `dynamic/seed_triangular.csv` is Paddle 3.3.1's trace of the seed's schedule:
//!
//! ```python
//! from paddle.optimizer.lr import CyclicLR
//! s = CyclicLR(base_learning_rate=0.5, max_learning_rate=1.0, step_size_up=15, step_size_down=5)
//! rows = [(0, s.last_epoch, s())]
//! for i in range(1, 201):
//!     s.step(s.last_epoch + 1)
//!     rows.append((i, s.last_epoch, s()))
//! # written as f"{step},{last_epoch},{lr!r}"
//! ```

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result, bail, ensure};
use cyclic_lr::CyclicLrConfig;
use cyclic_lr::train::checkpoint::{self, MANIFEST, Progress};
use cyclic_lr::train::dynamic::{self, Config, Report, TrainError};
use support::example_binary;
use tch::Device;
use tempfile::TempDir;

/// Counts the heap allocations Rust makes on each thread (libtorch's own, in C++, are not
/// seen), so that a test can tell what the training loop allocates per step.
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const REFERENCE: &str = include_str!("dynamic/seed_triangular.csv");

/// The seed's run on the CPU, where the same seed gives the same numbers.
fn seed_run() -> Config {
    Config {
        device: Device::Cpu,
        ..Config::default()
    }
}

fn quiet(epochs: usize, checkpoint: Option<&Path>, resume: bool) -> Config {
    Config {
        epochs,
        verbose: false,
        checkpoint: checkpoint.map(Path::to_path_buf),
        resume,
        ..seed_run()
    }
}

/// Runs the loop, returning its report and what it wrote.
fn train(config: &Config) -> Result<(Report, String)> {
    let mut out = Vec::new();
    let report = dynamic::run(config, &mut out)?;
    Ok((report, String::from_utf8(out)?))
}

fn final_line(output: &str) -> Result<&str> {
    let last = output.lines().last().context("no output")?;
    ensure!(last.starts_with("final "), "the last line is {last:?}");
    Ok(last)
}

/// Paddle's verbose lines for steps `0..=last`, from the reference trace.
fn paddle_verbose_lines(last: usize) -> Result<Vec<String>> {
    REFERENCE
        .lines()
        .skip(1)
        .take(last + 1)
        .map(|row| {
            let fields: Vec<&str> = row.split(',').collect();
            let [_, last_epoch, lr] = fields[..] else {
                bail!("bad reference row {row:?}");
            };
            Ok(format!(
                "Epoch {last_epoch}: CyclicLR set learning rate to {lr}."
            ))
        })
        .collect()
}

/// Every file in `dir` with its bytes; `None` when there is no such folder.
fn snapshot(dir: &Path) -> Result<Option<BTreeMap<String, Vec<u8>>>> {
    if !dir.exists() {
        return Ok(None);
    }
    let mut files = BTreeMap::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        files.insert(name, fs::read(entry.path())?);
    }
    Ok(Some(files))
}

/// The weights file of the checkpoint in `dir`.
fn weights_file(dir: &Path) -> Result<PathBuf> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "safetensors") {
            return Ok(path);
        }
    }
    bail!("no weights file in {}", dir.display())
}

/// A folder holding the checkpoint of a quiet CPU run of `config` after `epochs` epochs.
fn checkpoint_of(config: Config, epochs: usize) -> Result<TempDir> {
    let dir = TempDir::new()?;
    train(&Config {
        epochs,
        verbose: false,
        checkpoint: Some(dir.path().to_path_buf()),
        ..config
    })?;
    Ok(dir)
}

/// The example's binary, built by cargo beside this test (`target/<profile>/examples/`).
fn example(args: &[&str]) -> Result<Output> {
    Ok(Command::new(example_binary("dynamic")?)
        .args(args)
        .output()?)
}

/// Resuming from `dir` with `extra` flags fails with exit code 1 and one line on stderr that
/// names `file` and contains `reason`, without a panic and without touching the folder.
fn assert_refused(dir: &Path, extra: &[&str], file: &Path, reason: &str) -> Result<()> {
    let before = snapshot(dir)?;
    let dir_arg = dir.to_str().context("non-UTF-8 temporary folder")?;
    let mut args = vec![
        "--device",
        "cpu",
        "--quiet",
        "--checkpoint",
        dir_arg,
        "--resume",
    ];
    args.extend_from_slice(extra);
    let output = example(&args)?;
    let stderr = String::from_utf8(output.stderr)?;
    ensure!(
        output.status.code() == Some(1),
        "exit status {}: {stderr}",
        output.status
    );
    ensure!(
        stderr.lines().count() == 1,
        "stderr is not one line: {stderr:?}"
    );
    ensure!(!stderr.contains("panicked"), "a panic: {stderr}");
    let named = format!("error: {}: ", file.display());
    ensure!(
        stderr.starts_with(&named),
        "{stderr:?} does not start with {named:?}"
    );
    ensure!(
        stderr.contains(reason),
        "{stderr:?} does not say {reason:?}"
    );
    ensure!(
        output.stdout.is_empty(),
        "trained anyway: {:?}",
        output.stdout
    );
    ensure!(snapshot(dir)? == before, "the checkpoint folder changed");
    Ok(())
}

#[test]
fn seed_defaults_print_construction_and_100_steps_at_paddles_rates() -> Result<()> {
    let (_, output) = train(&seed_run())?;
    let verbose: Vec<&str> = output.lines().filter(|l| l.starts_with("Epoch ")).collect();
    assert_eq!(verbose, paddle_verbose_lines(100)?);
    Ok(())
}

#[test]
fn seed_defaults_print_an_epoch_line_after_every_20_steps_then_one_final_line() -> Result<()> {
    let (report, output) = train(&seed_run())?;
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), 1 + 5 * 21 + 1);
    for (e, result) in report.epochs.iter().enumerate() {
        assert_eq!(result.epoch, e);
        let line = lines[(e + 1) * 21];
        assert!(line.starts_with(&format!("epoch {e} loss=")), "{line:?}");
        assert!(
            line.ends_with(&format!(" lr={}", cyclic_lr::PyFloat(result.lr))),
            "{line:?}"
        );
    }
    assert_eq!(final_line(&output)?, report.summary.to_string());
    assert!(
        report
            .summary
            .to_string()
            .starts_with("final step=100 lr=0.5 loss=")
    );
    Ok(())
}

#[test]
fn epoch_lines_carry_the_mean_loss_and_the_next_steps_rate() -> Result<()> {
    let (report, _) = train(&seed_run())?;
    let (_, one_epoch_output) = train(&Config {
        epochs: 1,
        ..seed_run()
    })?;
    // After epoch 0 (20 steps) the rate is Paddle's at epoch 20, the base.
    assert_eq!(report.epochs[0].lr, 0.5);
    assert!(report.epochs.iter().all(|e| e.mean_loss.is_finite()));
    assert!(one_epoch_output.contains(&cyclic_lr::train::epoch_line(
        0,
        report.epochs[0].mean_loss,
        0.5
    )));
    Ok(())
}

#[test]
fn quiet_prints_no_per_step_lines() -> Result<()> {
    let (_, output) = train(&quiet(5, None, false))?;
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), 6);
    assert!(lines[..5].iter().all(|l| l.starts_with("epoch ")));
    Ok(())
}

#[test]
fn quiet_training_allocates_nothing_per_step() -> Result<()> {
    let allocations = |batches| -> Result<u64> {
        let config = Config {
            epochs: 1,
            batches,
            verbose: false,
            ..seed_run()
        };
        let before = ALLOCATIONS.with(Cell::get);
        dynamic::run(&config, &mut std::io::sink())?;
        Ok(ALLOCATIONS.with(Cell::get) - before)
    };
    assert_eq!(allocations(200)?, allocations(1)?);
    Ok(())
}

#[test]
fn quiet_and_verbose_runs_train_the_same() -> Result<()> {
    let (verbose, _) = train(&seed_run())?;
    let (quiet, _) = train(&quiet(5, None, false))?;
    assert_eq!(verbose, quiet);
    Ok(())
}

#[test]
fn the_same_seed_gives_the_same_output_to_the_last_digit() -> Result<()> {
    let config = Config {
        seed: Some(42),
        ..seed_run()
    };
    assert_eq!(train(&config)?.1, train(&config)?.1);
    Ok(())
}

#[test]
fn another_seed_gives_other_weights_and_losses() -> Result<()> {
    let (zero, _) = train(&seed_run())?;
    let (one, _) = train(&Config {
        seed: Some(1),
        ..seed_run()
    })?;
    assert_ne!(zero.summary.checksum, one.summary.checksum);
    assert_ne!(zero.summary.loss, one.summary.loss);
    assert_eq!(zero.summary.lr, one.summary.lr);
    Ok(())
}

#[test]
fn no_seed_is_seed_zero() -> Result<()> {
    let given = Config {
        seed: Some(dynamic::DEFAULT_SEED),
        ..seed_run()
    };
    assert_eq!(train(&seed_run())?.1, train(&given)?.1);
    Ok(())
}

#[test]
fn resuming_after_3_epochs_ends_like_one_run_of_5() -> Result<()> {
    let (whole, _) = train(&quiet(5, None, false))?;
    let dir = TempDir::new()?;
    train(&quiet(3, Some(dir.path()), false))?;
    let (resumed, output) = train(&quiet(5, Some(dir.path()), true))?;
    assert_eq!(resumed.summary, whole.summary);
    assert_eq!(resumed.epochs, whole.epochs[3..]);
    assert!(output.starts_with("epoch 3 loss="), "{output:?}");
    Ok(())
}

#[test]
fn resuming_one_epoch_at_a_time_ends_like_one_run() -> Result<()> {
    let (whole, _) = train(&quiet(5, None, false))?;
    let dir = TempDir::new()?;
    train(&quiet(1, Some(dir.path()), false))?;
    let mut last = None;
    for epochs in 2..=5 {
        last = Some(train(&quiet(epochs, Some(dir.path()), true))?.0);
    }
    assert_eq!(last.map(|r| r.summary), Some(whole.summary));
    Ok(())
}

#[test]
fn a_resumed_verbose_run_prints_only_its_own_steps() -> Result<()> {
    let dir = TempDir::new()?;
    train(&quiet(3, Some(dir.path()), false))?;
    let (_, output) = train(&Config {
        checkpoint: Some(dir.path().to_path_buf()),
        resume: true,
        ..seed_run()
    })?;
    let verbose: Vec<&str> = output.lines().filter(|l| l.starts_with("Epoch ")).collect();
    assert_eq!(verbose, paddle_verbose_lines(100)?[61..]);
    Ok(())
}

#[test]
fn the_example_resumed_prints_the_same_final_line() -> Result<()> {
    let dir = TempDir::new()?;
    let dir_arg = dir.path().to_str().context("non-UTF-8 temporary folder")?;
    let whole = example(&["--device", "cpu", "--quiet"])?;
    let first = example(&[
        "--device",
        "cpu",
        "--quiet",
        "--epochs",
        "3",
        "--checkpoint",
        dir_arg,
    ])?;
    let resumed = example(&[
        "--device",
        "cpu",
        "--quiet",
        "--epochs",
        "5",
        "--checkpoint",
        dir_arg,
        "--resume",
    ])?;
    for output in [&whole, &first, &resumed] {
        ensure!(output.status.success(), "{output:?}");
    }
    let whole = String::from_utf8(whole.stdout)?;
    let resumed = String::from_utf8(resumed.stdout)?;
    assert_eq!(final_line(&resumed)?, final_line(&whole)?);
    assert!(final_line(&whole)?.starts_with("final step=100 "));
    Ok(())
}

#[test]
fn resuming_a_finished_checkpoint_prints_its_final_line_without_training() -> Result<()> {
    let dir = TempDir::new()?;
    let (first, _) = train(&quiet(3, Some(dir.path()), false))?;
    let before = snapshot(dir.path())?;
    let (again, output) = train(&quiet(3, Some(dir.path()), true))?;
    assert_eq!(again.summary, first.summary);
    assert!(again.epochs.is_empty());
    assert_eq!(output.lines().count(), 1);
    assert_eq!(snapshot(dir.path())?, before);
    Ok(())
}

#[test]
fn a_checkpoint_is_a_manifest_and_one_weights_file() -> Result<()> {
    let dir = checkpoint_of(seed_run(), 3)?;
    let names: Vec<String> = snapshot(dir.path())?
        .context("no checkpoint folder")?
        .into_keys()
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(names[0], MANIFEST);
    assert!(names[1].starts_with("weights-") && names[1].ends_with(".safetensors"));
    Ok(())
}

#[test]
fn leftovers_of_an_interrupted_save_neither_break_resume_nor_stay() -> Result<()> {
    let (whole, _) = train(&quiet(5, None, false))?;
    let dir = checkpoint_of(seed_run(), 3)?;
    // What a crash during the next save can leave: its temporary files, and its weights
    // renamed into place before the manifest that would name them.
    fs::write(dir.path().join(".weights.tmp"), b"half a weights file")?;
    fs::write(
        dir.path().join(".manifest.json.tmp"),
        b"{\"version\": 1, \"progr",
    )?;
    fs::copy(
        weights_file(dir.path())?,
        dir.path().join("weights-0123456789abcdef.safetensors"),
    )?;
    let (resumed, _) = train(&quiet(5, Some(dir.path()), true))?;
    assert_eq!(resumed.summary, whole.summary);
    let names: Vec<String> = snapshot(dir.path())?
        .context("no checkpoint folder")?
        .into_keys()
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    Ok(())
}

#[test]
fn a_checkpoint_folder_that_cannot_be_made_is_refused_before_training() -> Result<()> {
    let parent = TempDir::new()?;
    let file = parent.path().join("a-file");
    fs::write(&file, b"")?;
    let dir = file.join("checkpoint");
    let mut out = Vec::new();
    let error = dynamic::run(&quiet(5, Some(&dir), false), &mut out).err();
    let message = error.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.starts_with(&format!("{}: cannot write: ", dir.display())),
        "{message:?}"
    );
    assert!(out.is_empty());
    Ok(())
}

#[test]
fn a_checkpoint_keeps_a_loss_that_json_cannot_write_as_a_number() -> Result<()> {
    let dir = TempDir::new()?;
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let _linear = tch::nn::linear(vs.root(), 10, 10, Default::default());
    for loss in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 1e-300] {
        let progress = Progress {
            epoch: 1,
            step: 20,
            batches: 20,
            seed: 0,
            loss,
            scheduler: Config::default().scheduler.init()?.state_dict(),
        };
        checkpoint::save(dir.path(), &vs, &progress)?;
        let loaded = checkpoint::load(dir.path(), &vs)?.progress.loss;
        assert_eq!(loaded.to_bits(), loss.to_bits(), "{loss}");
    }
    Ok(())
}

#[test]
fn resume_without_a_checkpoint_folder_is_refused() {
    let result = train(&quiet(5, None, true));
    let error = result.err().map(|e| e.downcast::<TrainError>());
    assert!(
        matches!(error, Some(Ok(TrainError::ResumeWithoutCheckpoint))),
        "{error:?}"
    );
}

#[test]
fn zero_batches_are_refused() {
    let result = train(&Config {
        batches: 0,
        ..seed_run()
    });
    let error = result.err().map(|e| e.downcast::<TrainError>());
    assert!(
        matches!(
            error,
            Some(Ok(TrainError::Zero {
                parameter: "batches"
            }))
        ),
        "{error:?}"
    );
}

#[test]
fn the_example_refuses_cuda_without_a_gpu_in_one_line() -> Result<()> {
    let output = example(&["--device", "cuda", "--quiet", "--epochs", "1"])?;
    if tch::Cuda::is_available() {
        ensure!(output.status.success(), "{output:?}");
    } else {
        let stderr = String::from_utf8(output.stderr)?;
        assert_eq!(output.status.code(), Some(2));
        assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
        assert!(stderr.contains("no CUDA device"), "{stderr:?}");
    }
    Ok(())
}

#[test]
fn the_example_refuses_resume_without_checkpoint_in_one_line() -> Result<()> {
    let output = example(&["--resume"])?;
    let stderr = String::from_utf8(output.stderr)?;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stderr, "error: resuming needs a checkpoint folder\n");
    Ok(())
}

// Bad checkpoints: each is refused by the example in one line naming the file, exit code 1,
// and the folder is left exactly as it was.

#[test]
fn refuses_a_missing_checkpoint_folder() -> Result<()> {
    let parent = TempDir::new()?;
    let dir = parent.path().join("never-written");
    assert_refused(&dir, &[], &dir.join(MANIFEST), "cannot read")?;
    assert!(!dir.exists());
    Ok(())
}

#[test]
fn refuses_a_missing_manifest() -> Result<()> {
    let dir = checkpoint_of(seed_run(), 3)?;
    fs::remove_file(dir.path().join(MANIFEST))?;
    assert_refused(dir.path(), &[], &dir.path().join(MANIFEST), "cannot read")
}

#[test]
fn refuses_missing_weights() -> Result<()> {
    let dir = checkpoint_of(seed_run(), 3)?;
    let weights = weights_file(dir.path())?;
    fs::remove_file(&weights)?;
    assert_refused(dir.path(), &[], &weights, "cannot read")
}

#[test]
fn refuses_truncated_weights() -> Result<()> {
    let dir = checkpoint_of(seed_run(), 3)?;
    let weights = weights_file(dir.path())?;
    let bytes = fs::read(&weights)?;
    fs::write(&weights, &bytes[..bytes.len() / 2])?;
    assert_refused(dir.path(), &[], &weights, "truncated")
}

#[test]
fn refuses_damaged_weights_of_the_right_size() -> Result<()> {
    let dir = checkpoint_of(seed_run(), 3)?;
    let weights = weights_file(dir.path())?;
    let mut bytes = fs::read(&weights)?;
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    fs::write(&weights, &bytes)?;
    assert_refused(dir.path(), &[], &weights, "checksum")
}

#[test]
fn refuses_a_truncated_manifest() -> Result<()> {
    let dir = checkpoint_of(seed_run(), 3)?;
    let manifest = dir.path().join(MANIFEST);
    let json = fs::read(&manifest)?;
    fs::write(&manifest, &json[..json.len() / 2])?;
    assert_refused(dir.path(), &[], &manifest, "not a checkpoint manifest")
}

#[test]
fn refuses_a_manifest_that_is_not_json() -> Result<()> {
    let dir = checkpoint_of(seed_run(), 3)?;
    let manifest = dir.path().join(MANIFEST);
    fs::write(&manifest, b"\x00\xffnot json at all")?;
    assert_refused(dir.path(), &[], &manifest, "not a checkpoint manifest")
}

#[test]
fn refuses_a_manifest_of_a_newer_format() -> Result<()> {
    let dir = checkpoint_of(seed_run(), 3)?;
    let manifest = dir.path().join(MANIFEST);
    let json = fs::read_to_string(&manifest)?.replacen("\"version\": 1", "\"version\": 2", 1);
    fs::write(&manifest, json)?;
    assert_refused(
        dir.path(),
        &[],
        &manifest,
        "format version 2 is not supported",
    )
}

#[test]
fn refuses_a_manifest_naming_weights_outside_the_folder() -> Result<()> {
    let dir = checkpoint_of(seed_run(), 3)?;
    let manifest = dir.path().join(MANIFEST);
    let json = fs::read_to_string(&manifest)?.replacen("\"weights-", "\"../weights-", 1);
    fs::write(&manifest, json)?;
    assert_refused(
        dir.path(),
        &[],
        &manifest,
        "not a weights-<checksum>.safetensors",
    )
}

#[test]
fn refuses_weights_of_another_shape() -> Result<()> {
    let dir = checkpoint_of(
        Config {
            features: 5,
            ..seed_run()
        },
        3,
    )?;
    let weights = weights_file(dir.path())?;
    assert_refused(
        dir.path(),
        &[],
        &weights,
        "tensor \"bias\" has shape [5], but the model's is [10]",
    )
}

#[test]
fn refuses_the_state_of_a_scheduler_with_other_bounds() -> Result<()> {
    let dir = checkpoint_of(
        Config {
            scheduler: CyclicLrConfig::new(0.1, 1.0, 15).with_step_size_down(5),
            ..seed_run()
        },
        3,
    )?;
    assert_refused(
        dir.path(),
        &[],
        &dir.path().join(MANIFEST),
        "scheduler state: the state has base_learning_rate = 0.1, but this scheduler has 0.5",
    )
}

#[test]
fn refuses_a_checkpoint_with_other_batches_per_epoch() -> Result<()> {
    let dir = checkpoint_of(seed_run(), 3)?;
    assert_refused(
        dir.path(),
        &["--batches", "10"],
        &dir.path().join(MANIFEST),
        "saved with batches per epoch 20, but this run has 10",
    )
}

#[test]
fn refuses_a_checkpoint_of_another_seed() -> Result<()> {
    let dir = checkpoint_of(seed_run(), 3)?;
    assert_refused(
        dir.path(),
        &["--seed", "7"],
        &dir.path().join(MANIFEST),
        "saved with seed 0, but this run has 7",
    )
}

#[test]
fn refuses_a_checkpoint_past_the_epochs_asked_for() -> Result<()> {
    let dir = checkpoint_of(seed_run(), 3)?;
    assert_refused(
        dir.path(),
        &["--epochs", "2"],
        &dir.path().join(MANIFEST),
        "3 epochs are done, more than the 2 asked for",
    )
}
