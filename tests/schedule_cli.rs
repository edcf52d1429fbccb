//! The `schedule` example, run as a user runs it: its CSV must be the peers' traces to the
//! byte, and every bad input one line on stderr with exit code 2.
//!
//! The traces in `tests/schedule_cli/` come from Paddle 3.3.1 and PyTorch 2.13.0 (see the
//! README there). The tests run the example binary that `cargo test` builds beside them
//! (`target/<profile>/examples/schedule`).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

mod support;

use anyhow::{Context, Result, ensure};
use support::example_binary;

const SEED: [&str; 8] = [
    "--base-learning-rate",
    "0.5",
    "--max-learning-rate",
    "1",
    "--step-size-up",
    "15",
    "--step-size-down",
    "5",
];

fn schedule(args: &[&str]) -> Result<Output> {
    Ok(Command::new(example_binary("schedule")?)
        .args(args)
        .output()?)
}

/// The CSV of a run that must succeed.
fn csv(args: &[&str]) -> Result<String> {
    let output = schedule(args)?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(output.status.success(), "{args:?} failed: {stderr}");
    ensure!(stderr.is_empty(), "{args:?} wrote to stderr: {stderr}");
    Ok(String::from_utf8(output.stdout)?)
}

fn reference(name: &str) -> Result<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/schedule_cli")
        .join(format!("{name}.csv"));
    std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
}

fn with_seed<'a>(more: &[&'a str]) -> Vec<&'a str> {
    SEED.iter().chain(more).copied().collect()
}

/// A refused input: exit code 2, nothing on stdout, one line on stderr saying `what`.
fn assert_refused(args: &[&str], what: &str) -> Result<()> {
    let output = schedule(args)?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(
        output.status.code() == Some(2),
        "{args:?}: {:?}, stderr {stderr}",
        output.status
    );
    ensure!(output.stdout.is_empty(), "{args:?} wrote to stdout");
    ensure!(
        stderr.lines().count() == 1,
        "{args:?}: not one line: {stderr}"
    );
    ensure!(
        stderr.contains(what),
        "{args:?}: {stderr} does not say {what:?}"
    );
    Ok(())
}

#[test]
fn seed_triangular_is_paddles_trace() -> Result<()> {
    let out = csv(&with_seed(&["--steps", "200"]))?;
    ensure!(out == reference("seed_triangular")?);
    Ok(())
}

#[test]
fn seed_triangular2_is_paddles_trace() -> Result<()> {
    let out = csv(&with_seed(&["--steps", "200", "--mode", "triangular2"]))?;
    ensure!(out == reference("seed_triangular2")?);
    Ok(())
}

#[test]
fn seed_exp_range_is_paddles_trace() -> Result<()> {
    let args = with_seed(&[
        "--steps",
        "200",
        "--mode",
        "exp_range",
        "--exp-gamma",
        "0.99",
    ]);
    ensure!(csv(&args)? == reference("seed_exp_range")?);
    Ok(())
}

#[test]
fn defaults_are_paddles_step_size_down_and_100_steps() -> Result<()> {
    let out = csv(&[
        "--base-learning-rate",
        "0.001",
        "--max-learning-rate",
        "0.006",
        "--step-size-up",
        "8",
    ])?;
    ensure!(out == reference("symmetric_default_down")?);
    Ok(())
}

#[test]
fn two_groups_with_momentum_are_torchs_trace() -> Result<()> {
    let out = csv(&[
        "--base-learning-rate",
        "0.01,0.001",
        "--max-learning-rate",
        "0.1,0.01",
        "--step-size-up",
        "10",
        "--step-size-down",
        "20",
        "--mode",
        "triangular2",
        "--cycle-momentum",
        "--base-momentum",
        "0.8,0.85",
        "--max-momentum",
        "0.9,0.95",
        "--steps",
        "150",
    ])?;
    ensure!(out.starts_with("step,last_epoch,lr_g0,lr_g1,mom_g0,mom_g1\n"));
    ensure!(out == reference("torch_two_groups_momentum")?);
    Ok(())
}

#[test]
fn one_group_with_momentum_has_group_columns() -> Result<()> {
    // PyTorch's default momentum bounds, 0.8 and 0.9, as for Adam's beta1 in the trace.
    let out = csv(&[
        "--base-learning-rate",
        "0.0001",
        "--max-learning-rate",
        "0.001",
        "--step-size-up",
        "5",
        "--mode",
        "exp_range",
        "--exp-gamma",
        "0.995",
        "--cycle-momentum",
    ])?;
    ensure!(out.starts_with("step,last_epoch,lr_g0,mom_g0\n"));
    ensure!(out == reference("torch_adam_beta1")?);
    Ok(())
}

#[test]
fn jump_row_is_the_state_after_step_to_epoch() -> Result<()> {
    let args = with_seed(&[
        "--steps", "60", "--jump", "5=100", "--jump", "20=3", "--jump", "40=47",
    ]);
    let out = csv(&args)?;
    ensure!(
        out.lines().nth(6) == Some("5,100,0.5"),
        "row 5: {:?}",
        out.lines().nth(6)
    );
    ensure!(out == reference("seed_jumps")?);
    Ok(())
}

#[test]
fn last_epoch_resumes_after_it() -> Result<()> {
    let args = with_seed(&[
        "--steps",
        "50",
        "--mode",
        "triangular2",
        "--last-epoch",
        "37",
    ]);
    let out = csv(&args)?;
    ensure!(out.lines().nth(1) == Some("0,38,0.6000000000000001"));
    ensure!(out == reference("seed_resumed")?);
    Ok(())
}

#[test]
fn closed_stdout_ends_quietly() -> Result<()> {
    // Far more than a pipe buffer, so the writer meets the closed pipe.
    let mut child = Command::new(example_binary("schedule")?)
        .args(with_seed(&["--steps", "1000000"]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first)?;
    ensure!(first == "step,last_epoch,lr\n");
    // The reader is dropped here, as `head` exits.
    let output = child.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(output.status.success(), "{:?}: {stderr}", output.status);
    ensure!(stderr.is_empty(), "{stderr}");
    Ok(())
}

#[test]
fn plot_svg_is_drawn_beside_the_csv() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("schedule.svg");
    let path_text = path.to_str().context("temp path is not UTF-8")?;
    let out = csv(&with_seed(&["--steps", "200", "--plot", path_text]))?;
    ensure!(out == reference("seed_triangular")?);
    let svg = std::fs::read_to_string(&path)?;
    ensure!(svg.contains("<svg"), "not an SVG: {} bytes", svg.len());
    ensure!(svg.contains("learning rate"));
    Ok(())
}

#[test]
fn plot_png_has_a_momentum_panel() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("schedule.png");
    let path_text = path.to_str().context("temp path is not UTF-8")?;
    csv(&with_seed(&["--cycle-momentum", "--plot", path_text]))?;
    let png = std::fs::read(&path)?;
    ensure!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "not a PNG: {} bytes",
        png.len()
    );
    // Two panels: the figure is 60 + 2 * 300 pixels high (the IHDR height, bytes 20..24).
    let height = u32::from_be_bytes(png[20..24].try_into()?);
    ensure!(height == 660, "height {height}");
    Ok(())
}

#[test]
fn help_names_the_defaults() -> Result<()> {
    let out = csv(&["--help"])?;
    ensure!(out.contains("--jump <STEP=EPOCH>"));
    ensure!(out.contains("Defaults are Paddle's"));
    Ok(())
}

#[test]
fn unknown_flag_is_refused() -> Result<()> {
    assert_refused(&with_seed(&["--bogus"]), "--bogus")
}

#[test]
fn missing_required_flag_is_refused() -> Result<()> {
    assert_refused(
        &["--base-learning-rate", "0.5", "--max-learning-rate", "1"],
        "required",
    )
}

#[test]
fn non_number_is_refused() -> Result<()> {
    let args = [
        "--base-learning-rate",
        "0.5",
        "--max-learning-rate",
        "one",
        "--step-size-up",
        "3",
    ];
    assert_refused(&args, "\"one\" is not a number")
}

#[test]
fn non_integer_step_count_is_refused() -> Result<()> {
    assert_refused(&with_seed(&["--steps", "2.5"]), "--steps")
}

#[test]
fn unknown_mode_is_refused() -> Result<()> {
    assert_refused(&with_seed(&["--mode", "foo"]), "mode must be one of")
}

#[test]
fn zero_step_size_is_refused_by_the_library() -> Result<()> {
    let args = [
        "--base-learning-rate",
        "0.5",
        "--max-learning-rate",
        "1",
        "--step-size-up",
        "0",
    ];
    assert_refused(&args, "step_size_up must be a positive number of steps")
}

#[test]
fn exp_gamma_above_one_is_refused_by_the_library() -> Result<()> {
    let args = with_seed(&["--mode", "exp_range", "--exp-gamma", "2"]);
    assert_refused(&args, "exp_gamma must be in (0, 1], got 2.0")
}

#[test]
fn negative_learning_rate_is_refused_by_the_library() -> Result<()> {
    let args = [
        "--base-learning-rate",
        "-1",
        "--max-learning-rate",
        "1",
        "--step-size-up",
        "3",
    ];
    assert_refused(&args, "base_learning_rate must not be negative")
}

#[test]
fn group_lists_of_different_lengths_are_refused() -> Result<()> {
    let args = [
        "--base-learning-rate",
        "0.1,0.2",
        "--max-learning-rate",
        "1,2,3",
        "--step-size-up",
        "3",
    ];
    assert_refused(
        &args,
        "max_learning_rate has 3 values, but base_learning_rate has 2",
    )
}

#[test]
fn momentum_list_of_another_length_is_refused() -> Result<()> {
    let args = [
        "--base-learning-rate",
        "0.1,0.2",
        "--max-learning-rate",
        "1,2",
        "--step-size-up",
        "3",
        "--cycle-momentum",
        "--base-momentum",
        "0.8,0.85,0.9",
    ];
    assert_refused(
        &args,
        "base_momentum has 3 values, but base_learning_rate has 2",
    )
}

#[test]
fn momentum_bound_without_cycle_momentum_is_refused() -> Result<()> {
    assert_refused(&with_seed(&["--max-momentum", "0.95"]), "required")
}

#[test]
fn jump_without_equals_is_refused() -> Result<()> {
    assert_refused(&with_seed(&["--jump", "5"]), "is not STEP=EPOCH")
}

#[test]
fn jump_to_a_non_number_is_refused() -> Result<()> {
    assert_refused(&with_seed(&["--jump", "5=x"]), "\"x\" is not an epoch")
}

#[test]
fn jump_at_row_0_is_refused() -> Result<()> {
    assert_refused(&with_seed(&["--jump", "0=4"]), "--last-epoch")
}

#[test]
fn jump_past_the_last_row_is_refused() -> Result<()> {
    let args = with_seed(&["--steps", "10", "--jump", "11=3"]);
    assert_refused(&args, "row 11 is past the last row (--steps 10)")
}

#[test]
fn two_jumps_at_one_row_are_refused() -> Result<()> {
    let args = with_seed(&["--jump", "5=3", "--jump", "5=9"]);
    assert_refused(&args, "row 5 is given more than one jump")
}

#[test]
fn jump_to_a_negative_epoch_is_refused_by_the_library() -> Result<()> {
    assert_refused(
        &with_seed(&["--jump", "5=-1"]),
        "--jump 5=-1: epoch must be in",
    )
}

#[test]
fn stepping_past_the_last_epoch_is_refused_before_any_output() -> Result<()> {
    let jump = format!("2={}", cyclic_lr::MAX_EPOCH);
    let args = with_seed(&["--steps", "3", "--jump", &jump]);
    assert_refused(&args, "row 3: cannot step past epoch")
}

#[test]
fn plot_file_other_than_svg_or_png_is_refused() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("schedule.txt");
    let path_text = path.to_str().context("temp path is not UTF-8")?;
    assert_refused(
        &with_seed(&["--plot", path_text]),
        "must end in .svg or .png",
    )?;
    ensure!(!path.exists(), "{} was written", path.display());
    Ok(())
}
