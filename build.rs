//! Makes every binary of this crate (examples, tests, benches) find libtorch on its own.
//!
//! torch-sys declares `links = "tch"` and prints `cargo:libtorch_lib=DIR`, which reaches this
//! script as `DEP_TCH_LIBTORCH_LIB`. Two linker arguments follow from it:
//! - an rpath to DIR, so that nothing needs `LD_LIBRARY_PATH`;
//! - `libtorch_cuda.so` linked with `--no-as-needed`: nothing in a binary refers to it
//!   directly, so rustc's default `--as-needed` drops it and `tch::Cuda::is_available()` is then
//!   false even on a machine with a GPU.

use std::env;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    let Ok(lib) = env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!(
            "cargo:warning=torch-sys did not say where libtorch is: set LD_LIBRARY_PATH to run"
        );
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    if Path::new(&lib).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
