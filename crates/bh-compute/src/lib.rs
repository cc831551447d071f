//! bh-compute: the compute node: capacity, bidding, the execution queue and store, and the Executor trait.

pub mod executor;

pub use executor::{
    ExecutionOutput, ExecutionRequest, Executor, ExecutorError, LogSink, LogStream, Mount,
    NullLogSink,
};
