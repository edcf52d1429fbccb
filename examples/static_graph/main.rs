//! Paddle's static-graph CyclicLR example in tch: a TorchScript module built ahead of time
//! (`make_module.py` beside this file) is loaded into a VarStore and trained from Rust with
//! SGD, the learning rate cycling as the seed's (base 0.5, max 1.0, 15 steps up, 5 down).
//!
//!     cargo run --release --example static_graph -- --device cpu --save trained.pt

#[path = "../common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use cyclic_lr::train::static_graph::{self, StaticGraphConfig};

/// Trains the seed's static program `x: [N, 4, 5] -> fc(x, 100) -> mean`, a TorchScript module,
/// on random [3, 4, 5] batches under CyclicLR.
#[derive(Parser)]
struct Args {
    /// The TorchScript module to train (default: the one beside this example).
    #[arg(long)]
    module: Option<PathBuf>,
    /// cpu or cuda (default: cuda when libtorch sees a GPU).
    #[arg(long, value_parser = common::parse_device)]
    device: Option<tch::Device>,
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    epochs: u64,
    /// Batches (optimizer steps) per epoch.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    batches: u64,
    /// Seed of the random batches.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Leave out the scheduler's line at each step (epoch lines and the summary remain).
    #[arg(long)]
    quiet: bool,
    /// Write the trained module here, load it back and check that it computes the same.
    #[arg(long)]
    save: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args: Args = common::parse_args();
    common::exit(train(args))
}

fn train(args: Args) -> anyhow::Result<()> {
    let module = args.module.unwrap_or_else(|| {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/static_graph/module.pt"
        ))
    });
    let mut config = StaticGraphConfig::new(module)
        .with_device(args.device.unwrap_or_else(tch::Device::cuda_if_available))
        .with_epochs(usize::try_from(args.epochs)?)
        .with_batches(usize::try_from(args.batches)?)
        .with_seed(args.seed)
        .with_verbose(!args.quiet);
    if let Some(path) = args.save {
        config = config.with_save(path);
    }
    static_graph::run(&config, &mut std::io::stdout().lock())?;
    Ok(())
}
