//! The static-graph example: Paddle's seed program as a TorchScript module, trained from Rust
//! with SGD under CyclicLR. Everything runs on the CPU, where libtorch is deterministic.

use std::path::{Path, PathBuf};

use cyclic_lr::train::parameter_checksum;
use cyclic_lr::train::static_graph::{
    self, PARAMETERS, StaticGraph, StaticGraphConfig, StaticGraphError, Training, fixed_batch,
};
use tch::{CModule, Device, Kind, Tensor};

fn bundled_module() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/static_graph/module.pt")
}

fn asset(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/static_graph")
        .join(name)
}

fn cpu_config() -> StaticGraphConfig {
    StaticGraphConfig::new(bundled_module()).with_device(Device::Cpu)
}

/// A folder of its own for each test, removed afterwards.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "cyclic-lr-static-graph-{}-{test}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(TempDir(dir))
    }

    fn file(&self, name: &str, contents: &[u8]) -> anyhow::Result<PathBuf> {
        let path = self.0.join(name);
        std::fs::write(&path, contents)?;
        Ok(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn values(tensor: &Tensor) -> anyhow::Result<Vec<f32>> {
    Ok(Vec::<f32>::try_from(tensor.flatten(0, -1))?)
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// The trainable parameters by name, in name order.
fn parameters(graph: &StaticGraph) -> Vec<(String, Tensor)> {
    let mut variables: Vec<_> = graph.var_store().variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    variables
}

/// Paddle 3.3.1's `CyclicLR(0.5, 1.0, step_size_up=15, step_size_down=5)`: `(last_epoch, lr)`
/// after construction and after each of 200 `step()` calls (see the reference traces' README).
fn reference_trace() -> anyhow::Result<Vec<(i64, f64)>> {
    let text = std::fs::read_to_string(asset("seed_triangular.csv"))?;
    text.lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            anyhow::ensure!(fields.len() == 3, "bad row {line:?}");
            Ok((fields[1].parse()?, fields[2].parse()?))
        })
        .collect()
}

fn load_error(path: &Path) -> StaticGraphError {
    match StaticGraph::load(path, Device::Cpu) {
        Ok(_) => panic!("{} loaded, but it is not the seed's module", path.display()),
        Err(e) => e,
    }
}

/// A user reads the error as one line that names the file.
fn assert_one_line_naming(error: &StaticGraphError, path: &Path) {
    let text = error.to_string();
    assert!(!text.contains('\n'), "more than one line: {text:?}");
    assert!(
        text.starts_with(&format!("{}: ", path.display())),
        "does not name {}: {text:?}",
        path.display()
    );
}

#[test]
fn bundled_module_has_the_seed_fc_parameters() -> anyhow::Result<()> {
    let graph = StaticGraph::load(bundled_module(), Device::Cpu)?;
    let found: Vec<(String, Vec<i64>, Kind, bool)> = parameters(&graph)
        .into_iter()
        .map(|(name, t)| (name, t.size(), t.kind(), t.requires_grad()))
        .collect();
    let mut expected: Vec<(String, Vec<i64>, Kind, bool)> = PARAMETERS
        .iter()
        .map(|(name, shape)| (name.to_string(), shape.to_vec(), Kind::Float, true))
        .collect();
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(found, expected);
    Ok(())
}

#[test]
fn bundled_module_maps_a_batch_to_100_outputs() -> anyhow::Result<()> {
    let graph = StaticGraph::load(bundled_module(), Device::Cpu)?;
    let z = graph.forward(&fixed_batch(Device::Cpu))?;
    assert_eq!(z.size(), [3, 100]);
    Ok(())
}

#[test]
fn bundled_module_forward_is_fc_of_the_flattened_batch() -> anyhow::Result<()> {
    let graph = StaticGraph::load(bundled_module(), Device::Cpu)?;
    let x = fixed_batch(Device::Cpu);
    let vars = graph.var_store().variables();
    let expected = x
        .flatten(1, -1)
        .linear(&vars["fc_weight"], Some(&vars["fc_bias"]));
    let z = graph.forward(&x)?;
    assert_eq!(bits(&values(&z)?), bits(&values(&expected)?));
    Ok(())
}

#[test]
fn loss_is_the_mean_of_the_output_and_ignores_y() -> anyhow::Result<()> {
    // The seed feeds y but computes `loss = paddle.mean(fc(x))`.
    let graph = StaticGraph::load(bundled_module(), Device::Cpu)?;
    let x = fixed_batch(Device::Cpu);
    let y = Tensor::ones([3, 4, 5], (Kind::Float, Device::Cpu));
    let other_y = -&y;
    let mean = graph.forward(&x)?.mean(Kind::Float).double_value(&[]);
    assert_eq!(
        graph.loss(&x, &y)?.double_value(&[]).to_bits(),
        mean.to_bits()
    );
    assert_eq!(
        graph.loss(&x, &other_y)?.double_value(&[]).to_bits(),
        mean.to_bits()
    );
    Ok(())
}

#[test]
fn each_step_moves_each_parameter_by_minus_lr_times_its_gradient() -> anyhow::Result<()> {
    // libtorch's C++ SGD (torch/csrc/api/src/optim/sgd.cpp), without momentum or weight decay,
    // does `p.add_(p.grad(), -lr)`: the float32 add kernel converts alpha = -lr to float32
    // and, vectorized, computes `fmadd(grad, alpha, p)`, one rounding (a plain `p + alpha*grad`
    // rounds twice and differs in a few percent of the elements). `f32::mul_add` is that fused
    // multiply-add. The rates cover a whole cycle, rising and falling, so a step taken at any
    // rate but the scheduled one fails.
    let mut training = Training::new(&cpu_config())?;
    let trace = reference_trace()?;
    for &(epoch, scheduled) in &trace[..20] {
        assert_eq!(training.scheduler().last_epoch(), epoch);
        let lr = training.scheduler().last_lr();
        assert_eq!(lr.to_bits(), scheduled.to_bits());
        let before: Vec<Vec<f32>> = parameters(training.graph())
            .iter()
            .map(|(_, p)| values(p))
            .collect::<anyhow::Result<_>>()?;
        training.step()?;
        for ((name, p), before) in parameters(training.graph()).iter().zip(before) {
            // The step's gradient: zeroed before the next backward pass, not by the step.
            let grad = values(&p.grad())?;
            let expected: Vec<f32> = grad
                .iter()
                .zip(&before)
                .map(|(g, p)| g.mul_add(-lr as f32, *p))
                .collect();
            assert_eq!(
                bits(&values(p)?),
                bits(&expected),
                "{name} after the step at epoch {epoch}, lr {lr}"
            );
        }
    }
    Ok(())
}

#[test]
fn learning_rates_follow_the_paddle_reference_trace() -> anyhow::Result<()> {
    // 10 epochs of 20 batches: construction and 200 steps, as the trace.
    let config = cpu_config().with_epochs(10).with_batches(20);
    let mut out = Vec::new();
    static_graph::run(&config, &mut out)?;
    let rates: Vec<(i64, f64)> = String::from_utf8(out)?
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("Epoch ")?;
            let (epoch, rest) = rest.split_once(": CyclicLR set learning rate to ")?;
            Some((epoch.parse().ok()?, rest.strip_suffix('.')?.parse().ok()?))
        })
        .collect();
    let as_bits = |trace: &[(i64, f64)]| -> Vec<(i64, u64)> {
        trace.iter().map(|&(e, lr)| (e, lr.to_bits())).collect()
    };
    assert_eq!(as_bits(&rates), as_bits(&reference_trace()?));
    Ok(())
}

#[test]
fn run_writes_an_epoch_line_per_epoch_then_the_summary() -> anyhow::Result<()> {
    let config = cpu_config()
        .with_epochs(3)
        .with_batches(4)
        .with_verbose(false);
    let mut out = Vec::new();
    let summary = static_graph::run(&config, &mut out)?;
    let text = String::from_utf8(out)?;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    for (epoch, line) in lines[..3].iter().enumerate() {
        assert!(line.starts_with(&format!("epoch {epoch} loss=")), "{line}");
    }
    assert_eq!(lines[3], summary.to_string());
    Ok(())
}

#[test]
fn summary_holds_the_last_step_rate_loss_and_checksum() -> anyhow::Result<()> {
    let config = cpu_config().with_epochs(2).with_batches(7);
    let summary = static_graph::run(&config, &mut Vec::new())?;

    let mut training = Training::new(&config)?;
    let mut loss = f64::NAN;
    for _ in 0..14 {
        loss = training.step()?;
    }
    assert_eq!(summary.step, 14);
    assert_eq!(summary.lr.to_bits(), reference_trace()?[14].1.to_bits());
    assert_eq!(summary.loss.to_bits(), loss.to_bits());
    let checksum = parameter_checksum(training.graph().var_store());
    assert_eq!(summary.checksum.to_bits(), checksum.to_bits());
    Ok(())
}

#[test]
fn the_same_seed_gives_the_same_run_and_another_seed_another() -> anyhow::Result<()> {
    let config = cpu_config().with_epochs(1).with_verbose(false);
    let first = static_graph::run(&config.clone().with_seed(7), &mut Vec::new())?;
    let again = static_graph::run(&config.clone().with_seed(7), &mut Vec::new())?;
    let other = static_graph::run(&config.with_seed(8), &mut Vec::new())?;
    assert_eq!(first, again);
    assert_ne!(first.loss, other.loss);
    assert_ne!(first.checksum, other.checksum);
    Ok(())
}

#[test]
fn training_changes_the_parameters() -> anyhow::Result<()> {
    let mut training = Training::new(&cpu_config())?;
    let initial = parameter_checksum(training.graph().var_store());
    training.step()?;
    assert_ne!(parameter_checksum(training.graph().var_store()), initial);
    Ok(())
}

#[test]
fn saved_module_reloads_with_equal_outputs_and_the_trained_parameters() -> anyhow::Result<()> {
    let dir = TempDir::new("save")?;
    let path = dir.0.join("trained.pt");
    let mut training = Training::new(&cpu_config())?;
    for _ in 0..5 {
        training.step()?;
    }
    training.graph().save(&path)?;

    let reloaded = CModule::load(&path)?;
    let x = fixed_batch(Device::Cpu);
    let trained = tch::no_grad(|| training.graph().forward(&x))?;
    let saved = tch::no_grad(|| reloaded.forward_ts(&[&x]))?;
    assert_eq!(bits(&values(&saved)?), bits(&values(&trained)?));
    let mut saved_parameters = reloaded.named_parameters()?;
    saved_parameters.sort_by(|a, b| a.0.cmp(&b.0));
    for ((saved_name, saved), (name, trained)) in
        saved_parameters.iter().zip(parameters(training.graph()))
    {
        assert_eq!(saved_name.replace('.', "_"), name);
        assert_eq!(bits(&values(saved)?), bits(&values(&trained)?), "{name}");
    }
    Ok(())
}

#[test]
fn run_with_save_reports_the_checked_save() -> anyhow::Result<()> {
    let dir = TempDir::new("run-save")?;
    let path = dir.0.join("trained.pt");
    let config = cpu_config()
        .with_epochs(1)
        .with_verbose(false)
        .with_save(&path);
    let mut out = Vec::new();
    static_graph::run(&config, &mut out)?;
    let saved = StaticGraph::load(&path, Device::Cpu)?;
    let text = String::from_utf8(out)?;
    assert!(
        text.contains(&format!("saved {}: loaded back,", path.display())),
        "{text}"
    );
    assert!(parameters(&saved).len() == PARAMETERS.len());
    Ok(())
}

#[test]
fn save_into_a_missing_folder_fails_before_training() -> anyhow::Result<()> {
    let dir = TempDir::new("save-missing")?;
    let path = dir.0.join("no-such-folder").join("trained.pt");
    let config = cpu_config().with_save(&path);
    let mut out = Vec::new();
    let error = static_graph::run(&config, &mut out).err();
    assert!(matches!(&error, Some(StaticGraphError::Save { path: p, .. }) if *p == path));
    if let Some(error) = &error {
        assert_one_line_naming(error, &path);
    }
    assert!(out.is_empty(), "trained before failing");
    Ok(())
}

#[test]
fn missing_file_is_refused_before_anything_runs() -> anyhow::Result<()> {
    let dir = TempDir::new("missing")?;
    let path = dir.0.join("absent.pt");
    let mut out = Vec::new();
    let config = StaticGraphConfig::new(&path).with_device(Device::Cpu);
    let error = static_graph::run(&config, &mut out).err();
    assert!(matches!(&error, Some(StaticGraphError::Missing { path: p }) if *p == path));
    if let Some(error) = &error {
        assert_one_line_naming(error, &path);
    }
    assert!(out.is_empty());
    Ok(())
}

#[test]
fn text_file_is_not_torchscript() -> anyhow::Result<()> {
    let dir = TempDir::new("text")?;
    let path = dir.file("module.pt", b"x = fc(x, 100)\n")?;
    let error = load_error(&path);
    assert!(
        matches!(error, StaticGraphError::NotTorchScript { .. }),
        "{error}"
    );
    assert_one_line_naming(&error, &path);
    Ok(())
}

#[test]
fn truncated_module_is_not_torchscript() -> anyhow::Result<()> {
    let dir = TempDir::new("truncated")?;
    let bytes = std::fs::read(bundled_module())?;
    let path = dir.file("module.pt", &bytes[..bytes.len() / 2])?;
    let error = load_error(&path);
    assert!(
        matches!(error, StaticGraphError::NotTorchScript { .. }),
        "{error}"
    );
    assert_one_line_naming(&error, &path);
    Ok(())
}

#[test]
fn zip_archive_of_tensors_is_not_torchscript() -> anyhow::Result<()> {
    // An .npz is a zip archive, like a TorchScript file, but holds no TorchScript records.
    let dir = TempDir::new("npz")?;
    let path = dir.0.join("tensors.npz");
    Tensor::write_npz(&[("x", fixed_batch(Device::Cpu))], &path)?;
    let error = load_error(&path);
    assert!(
        matches!(error, StaticGraphError::NotTorchScript { .. }),
        "{error}"
    );
    assert_one_line_naming(&error, &path);
    Ok(())
}

#[test]
fn folder_is_not_torchscript() -> anyhow::Result<()> {
    let dir = TempDir::new("folder")?;
    let error = load_error(&dir.0);
    assert!(
        matches!(error, StaticGraphError::NotTorchScript { .. }),
        "{error}"
    );
    assert_one_line_naming(&error, &dir.0);
    Ok(())
}

#[test]
fn module_without_loss_method_is_refused() {
    // make_module.py --variant no-loss: forward only.
    let path = asset("no_loss.pt");
    let error = load_error(&path);
    assert!(
        matches!(&error, StaticGraphError::Method { method: "loss", problem, .. } if problem.starts_with("is missing")),
        "{error}"
    );
    assert_one_line_naming(&error, &path);
}

#[test]
fn module_with_other_parameter_shapes_is_refused() {
    // make_module.py --variant wrong-shapes: Linear(20, 50).
    let path = asset("wrong_shapes.pt");
    let error = load_error(&path);
    assert!(
        matches!(&error, StaticGraphError::Parameters { found, .. } if found == "fc_bias [50], fc_weight [50, 20]"),
        "{error}"
    );
    assert_one_line_naming(&error, &path);
}

#[test]
fn zero_epochs_is_refused() {
    let error = static_graph::run(&cpu_config().with_epochs(0), &mut Vec::new()).err();
    assert!(matches!(
        error,
        Some(StaticGraphError::Zero {
            parameter: "epochs"
        })
    ));
}

#[test]
fn zero_batches_is_refused() {
    let error = static_graph::run(&cpu_config().with_batches(0), &mut Vec::new()).err();
    assert!(matches!(
        error,
        Some(StaticGraphError::Zero {
            parameter: "batches"
        })
    ));
}
