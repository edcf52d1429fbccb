//! What the examples share: argument parsing with one-line errors, and plots.
//! Included by each example with `#[path = "common/mod.rs"] mod common;`.
#![allow(dead_code)] // each example uses a part

pub mod plot;

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

/// Parses the command line; a bad or missing flag is one line on stderr and exit code 2,
/// `--help` prints the usage and exits 0.
pub fn parse_args<T: Parser>() -> T {
    match T::try_parse() {
        Ok(args) => args,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            e.exit()
        }
        Err(e) => {
            // The first paragraph, joined: clap lists what is missing on the lines after the first.
            let text = e.to_string();
            let lines: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|line| !line.is_empty())
                .collect();
            let line = if lines.is_empty() {
                "error: invalid arguments".to_owned()
            } else {
                lines.join(" ")
            };
            eprintln!("{line} (see --help)");
            std::process::exit(2);
        }
    }
}

/// Turns `main`'s result into an exit code: an error is one line on stderr (its causes joined
/// by `: `) and exit code 1.
pub fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A comma-separated list of numbers, one per parameter group (`0.1,0.01`).
pub fn parse_list(text: &str) -> Result<Vec<f64>, String> {
    text.split(',')
        .map(|item| {
            item.trim()
                .parse::<f64>()
                .map_err(|_| format!("{item:?} is not a number"))
        })
        .collect()
}

/// `cpu` or `cuda`; `cuda` without a GPU is an error rather than a silent fall-back.
pub fn parse_device(text: &str) -> Result<tch::Device, String> {
    match text {
        "cpu" => Ok(tch::Device::Cpu),
        "cuda" if tch::Cuda::is_available() => Ok(tch::Device::Cuda(0)),
        "cuda" => Err("no CUDA device is available (libtorch sees no GPU)".to_owned()),
        _ => Err(format!("{text:?} is not a device: use cpu or cuda")),
    }
}
