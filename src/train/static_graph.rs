//! The seed's static-graph example: a pre-built TorchScript module trained under CyclicLR.
