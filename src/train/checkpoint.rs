//! Training checkpoints that survive a crash at any moment: a folder holding the weights
//! (safetensors) and a JSON manifest (progress, scheduler state, and the weights file's size
//! and checksum).
//!
//! ```text
//! checkpoint/
//!   manifest.json                      written last; names the weights file
//!   weights-<checksum>.safetensors     the VarStore's variables
//! ```
//!
//! Each file is written to a temporary file in the same folder, flushed to disk (`fsync`) and
//! renamed over its final name, and the folder is flushed after each rename. The weights file
//! is named after its checksum, so a new one never replaces the file the current manifest
//! names: until the new manifest's rename, the folder holds the previous checkpoint intact,
//! and afterwards the new one. Weights files no manifest names any more are removed last.
//!
//! [`load`] checks everything (the manifest's JSON, the weights file's size, checksum and
//! format, each tensor's name, shape and kind) and changes nothing; [`Checkpoint::restore`]
//! then copies the weights into the model.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::{Device, TchError, Tensor};

use crate::state::State;

/// The manifest's file name in a checkpoint folder.
pub const MANIFEST: &str = "manifest.json";

/// The manifest format this crate writes and reads.
pub const FORMAT_VERSION: u64 = 1;

const WEIGHTS_PREFIX: &str = "weights-";
const WEIGHTS_SUFFIX: &str = ".safetensors";

/// What is wrong with a checkpoint, always naming the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// A file could not be read (a missing checkpoint is a missing manifest).
    #[error("{}: cannot read: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },

    /// A file or the folder could not be written.
    #[error("{}: cannot write: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },

    /// The manifest is not valid JSON, or not a manifest.
    #[error("{}: not a checkpoint manifest: {reason}", path.display())]
    Manifest { path: PathBuf, reason: String },

    /// A manifest of a format version this crate cannot read.
    #[error("{}: checkpoint format version {found} is not supported (this crate reads {FORMAT_VERSION})", path.display())]
    Version { path: PathBuf, found: u64 },

    /// The weights file is not the size the manifest records.
    #[error("{}: {found} bytes, but the manifest records {expected}: the file is truncated or was replaced", path.display())]
    WeightsSize {
        path: PathBuf,
        found: u64,
        expected: u64,
    },

    /// The weights file's checksum is not the one the manifest records.
    #[error("{}: checksum {found}, but the manifest records {expected}: the file is damaged or was replaced", path.display())]
    WeightsChecksum {
        path: PathBuf,
        found: String,
        expected: String,
    },

    /// The weights file is not a safetensors file.
    #[error("{}: not a safetensors weights file: {reason}", path.display())]
    WeightsFormat { path: PathBuf, reason: String },

    /// The weights do not fit the model: a tensor missing, extra, or of another shape or kind.
    #[error("{}: {reason}", path.display())]
    WeightsMismatch { path: PathBuf, reason: String },

    /// The scheduler state in the manifest does not belong to this run's scheduler.
    #[error("{}: scheduler state: {source}", path.display())]
    Scheduler { path: PathBuf, source: crate::Error },

    /// The checkpoint was saved by a run set up differently (batches per epoch, seed).
    #[error("{}: saved with {what} {saved}, but this run has {current}", path.display())]
    RunMismatch {
        path: PathBuf,
        what: &'static str,
        saved: String,
        current: String,
    },

    /// The manifest contradicts itself or the request (a step count that is not epochs ×
    /// batches, more epochs done than asked for).
    #[error("{}: {reason}", path.display())]
    Inconsistent { path: PathBuf, reason: String },

    /// libtorch refused to copy the checked weights into the model.
    #[error("{}: {source}", path.display())]
    Torch { path: PathBuf, source: TchError },
}

/// The weights file a manifest names, with what detects a truncated or damaged one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightsFile {
    /// A file name in the checkpoint folder: `weights-<checksum>.safetensors`.
    pub file: String,
    pub bytes: u64,
    /// FNV-1a (64 bits) of the file, in hex: not cryptographic, it catches truncation and
    /// accidental damage.
    pub fnv1a64: String,
}

/// Where training stands, as the manifest records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps taken, which is the data generator's position (see
    /// [`dynamic`](crate::train::dynamic)).
    pub step: i64,
    /// Batches per epoch.
    pub batches: usize,
    pub seed: u64,
    /// The last batch's loss (any `f64`: non-finite values are written as strings).
    #[serde(with = "any_f64")]
    pub loss: f64,
    /// [`CyclicLr::state_dict`](crate::CyclicLr::state_dict), the library's JSON.
    pub scheduler: State,
}

/// The content of `manifest.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub version: u64,
    pub progress: Progress,
    pub weights: WeightsFile,
}

/// A checkpoint read and checked against a model, not yet applied.
#[derive(Debug)]
pub struct Checkpoint {
    /// The manifest's path, for errors about what it records.
    pub manifest_path: PathBuf,
    pub progress: Progress,
    weights_path: PathBuf,
    weights: Vec<(String, Tensor)>,
}

impl Checkpoint {
    /// The weights file's path.
    pub fn weights_path(&self) -> &Path {
        &self.weights_path
    }

    /// Copies the checked weights into `vs`, whose variables [`load`] checked them against.
    ///
    /// # Errors
    /// [`CheckpointError::Torch`] if libtorch refuses a copy (say, out of device memory).
    pub fn restore(&self, vs: &VarStore) -> Result<(), CheckpointError> {
        let variables = vs.variables();
        tch::no_grad(|| {
            for (name, saved) in &self.weights {
                if let Some(variable) = variables.get(name) {
                    let mut variable = variable.shallow_clone();
                    variable
                        .f_copy_(saved)
                        .map_err(|source| CheckpointError::Torch {
                            path: self.weights_path.clone(),
                            source,
                        })?;
                }
            }
            Ok(())
        })
    }
}

/// Creates the checkpoint folder if it is missing, so that a path that cannot hold one is
/// refused before any training.
///
/// # Errors
/// [`CheckpointError::Write`] naming the folder.
pub fn create_dir(dir: &Path) -> Result<(), CheckpointError> {
    fs::create_dir_all(dir).map_err(|source| CheckpointError::Write {
        path: dir.to_path_buf(),
        source,
    })
}

/// Writes a checkpoint of `vs` and `progress` into `dir` (created if missing), replacing the
/// one there atomically (see the module documentation).
///
/// # Errors
/// [`CheckpointError::Write`] naming the file or folder that could not be written.
pub fn save(dir: &Path, vs: &VarStore, progress: &Progress) -> Result<(), CheckpointError> {
    let write_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CheckpointError::Write { path, source }
    };
    create_dir(dir)?;
    let temporary = dir.join(".weights.tmp");
    write_weights(vs, &temporary)?;
    let bytes = fs::read(&temporary).map_err(write_error(&temporary))?;
    let checksum = format!("{:016x}", fnv1a64(&bytes));
    let file = format!("{WEIGHTS_PREFIX}{checksum}{WEIGHTS_SUFFIX}");
    File::open(&temporary)
        .and_then(|f| f.sync_all())
        .map_err(write_error(&temporary))?;
    let weights_path = dir.join(&file);
    fs::rename(&temporary, &weights_path).map_err(write_error(&weights_path))?;
    sync_dir(dir)?;

    let manifest = Manifest {
        version: FORMAT_VERSION,
        progress: progress.clone(),
        weights: WeightsFile {
            file: file.clone(),
            bytes: bytes.len() as u64,
            fnv1a64: checksum,
        },
    };
    let json = serde_json::to_string_pretty(&manifest).map_err(|e| CheckpointError::Write {
        path: dir.join(MANIFEST),
        source: io::Error::other(e),
    })?;
    write_atomically(dir, MANIFEST, format!("{json}\n").as_bytes())?;
    remove_unused_weights(dir, &file);
    Ok(())
}

/// Reads the checkpoint in `dir` and checks it against the variables of `vs` (names, shapes,
/// kinds), changing nothing.
///
/// # Errors
/// A [`CheckpointError`] naming the file: missing or unreadable, a manifest that is not JSON
/// or not a manifest, a weights file of the wrong size or checksum, not safetensors, or with
/// tensors that do not fit the model.
pub fn load(dir: &Path, vs: &VarStore) -> Result<Checkpoint, CheckpointError> {
    let manifest_path = dir.join(MANIFEST);
    let json = fs::read(&manifest_path).map_err(|source| CheckpointError::Read {
        path: manifest_path.clone(),
        source,
    })?;
    let manifest = parse_manifest(&manifest_path, &json)?;

    let weights_path = dir.join(&manifest.weights.file);
    let bytes = fs::read(&weights_path).map_err(|source| CheckpointError::Read {
        path: weights_path.clone(),
        source,
    })?;
    if bytes.len() as u64 != manifest.weights.bytes {
        return Err(CheckpointError::WeightsSize {
            path: weights_path,
            found: bytes.len() as u64,
            expected: manifest.weights.bytes,
        });
    }
    let checksum = format!("{:016x}", fnv1a64(&bytes));
    if checksum != manifest.weights.fnv1a64 {
        return Err(CheckpointError::WeightsChecksum {
            path: weights_path,
            found: checksum,
            expected: manifest.weights.fnv1a64,
        });
    }
    let weights = Tensor::read_safetensors(&weights_path).map_err(|e| {
        let reason = match e {
            TchError::SafeTensorError { err, .. } => err.to_string(),
            other => other.to_string(),
        };
        CheckpointError::WeightsFormat {
            path: weights_path.clone(),
            reason,
        }
    })?;
    check_weights(vs, &weights).map_err(|reason| CheckpointError::WeightsMismatch {
        path: weights_path.clone(),
        reason,
    })?;
    Ok(Checkpoint {
        manifest_path,
        progress: manifest.progress,
        weights_path,
        weights,
    })
}

fn parse_manifest(path: &Path, json: &[u8]) -> Result<Manifest, CheckpointError> {
    // The version first, so that a newer format is reported as such rather than as damage.
    #[derive(Deserialize)]
    struct Versioned {
        version: u64,
    }
    let malformed = |e: serde_json::Error| CheckpointError::Manifest {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let Versioned { version } = serde_json::from_slice(json).map_err(malformed)?;
    if version != FORMAT_VERSION {
        return Err(CheckpointError::Version {
            path: path.to_path_buf(),
            found: version,
        });
    }
    let manifest: Manifest = serde_json::from_slice(json).map_err(malformed)?;
    let file = &manifest.weights.file;
    let plain_name = Path::new(file)
        .file_name()
        .is_some_and(|name| name == file.as_str());
    if !plain_name || !file.starts_with(WEIGHTS_PREFIX) || !file.ends_with(WEIGHTS_SUFFIX) {
        return Err(CheckpointError::Manifest {
            path: path.to_path_buf(),
            reason: format!(
                "weights file {file:?} is not a {WEIGHTS_PREFIX}<checksum>{WEIGHTS_SUFFIX} in the checkpoint folder"
            ),
        });
    }
    Ok(manifest)
}

/// The saved tensors must be exactly the model's variables, each of the same shape and kind:
/// `Tensor::copy_` would broadcast a smaller shape and convert a kind without complaint.
fn check_weights(vs: &VarStore, weights: &[(String, Tensor)]) -> Result<(), String> {
    let variables: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    let saved: BTreeMap<&str, &Tensor> = weights.iter().map(|(n, t)| (n.as_str(), t)).collect();
    for (name, variable) in &variables {
        let Some(tensor) = saved.get(name.as_str()) else {
            return Err(format!("no tensor {name:?}, which the model has"));
        };
        if tensor.size() != variable.size() {
            return Err(format!(
                "tensor {name:?} has shape {:?}, but the model's is {:?}",
                tensor.size(),
                variable.size()
            ));
        }
        if tensor.kind() != variable.kind() {
            return Err(format!(
                "tensor {name:?} is {:?}, but the model's is {:?}",
                tensor.kind(),
                variable.kind()
            ));
        }
    }
    if let Some(extra) = saved.keys().find(|name| !variables.contains_key(**name)) {
        return Err(format!("tensor {extra:?} is not in the model"));
    }
    Ok(())
}

fn write_weights(vs: &VarStore, path: &Path) -> Result<(), CheckpointError> {
    // Sorted by name, and on the CPU, so that the same weights give the same bytes (and name).
    let mut named: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(name, tensor)| (name, tensor.to_device(Device::Cpu).contiguous()))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    Tensor::write_safetensors(&named, path).map_err(|e| CheckpointError::Write {
        path: path.to_path_buf(),
        source: io::Error::other(e.to_string()),
    })
}

/// Writes `dir/name` through a temporary file in `dir`: flushed, renamed, folder flushed.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), CheckpointError> {
    let temporary = dir.join(format!(".{name}.tmp"));
    let write_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CheckpointError::Write { path, source }
    };
    let mut file = File::create(&temporary).map_err(write_error(&temporary))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(write_error(&temporary))?;
    drop(file);
    let path = dir.join(name);
    fs::rename(&temporary, &path).map_err(write_error(&path))?;
    sync_dir(dir)
}

/// Makes the folder's renames durable (POSIX: an entry is on disk once its folder is synced).
fn sync_dir(dir: &Path) -> Result<(), CheckpointError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| CheckpointError::Write {
            path: dir.to_path_buf(),
            source,
        })
}

/// Removes the weights files of earlier checkpoints (or of a crash before a manifest named
/// them). Only names of the form this module writes are touched. Best effort: the new
/// checkpoint is complete already, and a file left behind only takes space.
fn remove_unused_weights(dir: &Path, current: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name != current && name.starts_with(WEIGHTS_PREFIX) && name.ends_with(WEIGHTS_SUFFIX) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// 64-bit FNV-1a.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// An `f64` as a JSON number, or as Python's `"nan"`, `"inf"`, `"-inf"` when it is not
/// finite (JSON has no such numbers, and a diverged run's checkpoint must still load).
mod any_f64 {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::pyfmt::PyFloat;

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Number {
        Finite(f64),
        Text(String),
    }

    pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        if value.is_finite() {
            Number::Finite(*value)
        } else {
            Number::Text(PyFloat(*value).to_string())
        }
        .serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        match Number::deserialize(deserializer)? {
            Number::Finite(value) => Ok(value),
            Number::Text(text) => match text.as_str() {
                "nan" => Ok(f64::NAN),
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                _ => Err(serde::de::Error::custom(format!(
                    "{text:?} is not a number (nor \"nan\", \"inf\", \"-inf\")"
                ))),
            },
        }
    }
}
