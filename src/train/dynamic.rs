//! The seed's dynamic-graph example: a Linear(10, 10) trained with SGD under CyclicLR.
