use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

fn main() -> anyhow::Result<()> {
    let vs = nn::VarStore::new(Device::cuda_if_available());
    let linear = nn::linear(vs.root(), 10, 10, Default::default());
    let mut scheduler = cyclic_lr::CyclicLrConfig::new(0.5, 1.0, 15)
        .with_step_size_down(5)
        .with_verbose(true)
        .init()?;
    let mut opt = nn::Sgd::default().build(&vs, scheduler.last_lr())?;
    for _ in 0..100 {
        let x = Tensor::rand([10, 10], (Kind::Float, vs.device()));
        let loss = linear.forward(&x).mean(Kind::Float);
        opt.backward_step(&loss);
        scheduler.step_with(&mut opt)?;
    }
    Ok(())
}
