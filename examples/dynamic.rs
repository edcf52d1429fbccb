//! The seed's dynamic-graph example: a Linear(10, 10) trained with SGD whose learning rate
//! CyclicLR(base 0.5, max 1.0, 15 steps up, 5 down) sets after every batch, 5 epochs of 20
//! batches, printing Paddle's verbose lines, a line per epoch and a final line.
//!
//! ```sh
//! cargo run --release --example dynamic
//! cargo run --release --example dynamic -- --epochs 3 --checkpoint ckpt
//! cargo run --release --example dynamic -- --epochs 5 --checkpoint ckpt --resume
//! ```
//!
//! The loop itself is `cyclic_lr::train::dynamic::run`, which the tests run too.

#[path = "common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use cyclic_lr::train::dynamic::{self, Config};
use tch::Device;

/// Trains the seed's Linear(10, 10) under CyclicLR.
#[derive(Parser)]
struct Args {
    /// Epochs to train (in all, counting those of a resumed checkpoint).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    epochs: u32,
    /// Batches per epoch.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    batches: u32,
    /// Seed of the initial weights and the data (default 0; when resuming, the checkpoint's).
    #[arg(long)]
    seed: Option<u64>,
    /// No per-step lines.
    #[arg(long)]
    quiet: bool,
    /// cpu or cuda (default: cuda if available).
    #[arg(long, value_parser = common::parse_device)]
    device: Option<Device>,
    /// Write a checkpoint to DIR at the end of every epoch.
    #[arg(long, value_name = "DIR")]
    checkpoint: Option<PathBuf>,
    /// Continue from DIR's checkpoint up to --epochs.
    #[arg(long)]
    resume: bool,
}

fn main() -> ExitCode {
    common::exit(train())
}

fn train() -> anyhow::Result<()> {
    let args: Args = common::parse_args();
    let config = Config {
        epochs: args.epochs as usize,
        batches: args.batches as usize,
        seed: args.seed,
        device: args.device.unwrap_or_else(Device::cuda_if_available),
        verbose: !args.quiet,
        checkpoint: args.checkpoint,
        resume: args.resume,
        ..Config::default()
    };
    dynamic::run(&config, &mut std::io::stdout().lock())?;
    Ok(())
}
