//! xtask's library: starts a local bh cluster from built binaries (used by `cargo xtask demo`, `bench` and the
//! end-to-end tests) and holds the sample workloads.

pub mod cluster;
pub mod images;
pub mod samples;
