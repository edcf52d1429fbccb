//! The LR range test of the CLR paper (section 3.3): how to pick the two bounds.
