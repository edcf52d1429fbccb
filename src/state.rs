//! The saved state of a [`CyclicLr`](crate::CyclicLr): Paddle's `state_dict` plus what makes a
//! load safe (the configuration it belongs to and a format version).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cyclic::PerGroup;
use crate::error::Error;
use crate::schedule::{Mode, ScaleMode};

/// The format version [`CyclicLr::state_dict`](crate::CyclicLr::state_dict) writes.
pub const STATE_VERSION: u64 = 1;

/// A scheduler's state. Paddle's own `{"last_epoch": 7, "last_lr": 0.73}` reads as one with no
/// version and no configuration.
///
/// ```json
/// {"version": 1, "last_epoch": 7, "last_lr": 0.7333333333333334, "config": {...}}
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    pub last_epoch: i64,
    pub last_lr: PerGroup,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_momentum: Option<PerGroup>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<SavedConfig>,
}

impl State {
    /// Parses a state from JSON.
    ///
    /// # Errors
    /// [`Error::StateFormat`] for anything that is not a state, whatever the bytes.
    pub fn from_json(json: &[u8]) -> Result<Self, Error> {
        serde_json::from_slice(json).map_err(|e| Error::StateFormat(e.to_string()))
    }

    /// The state as JSON.
    pub fn to_json(&self) -> String {
        // A State holds only numbers, strings, bools and lists: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The configuration a state was saved under. A custom scale function cannot be written
/// down: `scale_fn` only records that one was used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedConfig {
    pub base_learning_rate: PerGroup,
    pub max_learning_rate: PerGroup,
    pub step_size_up: u64,
    pub step_size_down: u64,
    pub mode: Mode,
    pub exp_gamma: f64,
    pub scale_fn: bool,
    pub scale_mode: ScaleMode,
    pub cycle_momentum: bool,
    pub base_momentum: PerGroup,
    pub max_momentum: PerGroup,
}

impl SavedConfig {
    /// Refuses a configuration that differs from `current`, naming the first differing field.
    pub(crate) fn check_same(&self, current: &SavedConfig) -> Result<(), Error> {
        let (saved, current) = (fields(self), fields(current));
        for (field, saved_value) in &saved {
            let current_value = current.get(field).unwrap_or(&Value::Null);
            if saved_value != current_value {
                return Err(Error::StateMismatch {
                    field: field.clone(),
                    saved: saved_value.to_string(),
                    current: current_value.to_string(),
                });
            }
        }
        Ok(())
    }
}

fn fields(config: &SavedConfig) -> Map<String, Value> {
    match serde_json::to_value(config) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}
