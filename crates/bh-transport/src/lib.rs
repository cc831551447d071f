//! bh-transport: the orchestrator-compute gRPC protocol, the REST gateway and the typed REST client.
//!
//! - [`router`]: the axum router of Bacalhau's `/api/v1` REST API over an [`service::OrchestratorApi`].
//! - [`Client`]: the typed REST client used by the CLI and by embedders.
//! - [`serve_grpc`]: the orchestrator's gRPC server for compute nodes, driving a [`service::NodeHub`].
//! - [`run_compute_client`]: the compute node's side, dialling orchestrators and driving a
//!   [`service::ComputeAgent`].
//! - [`errors`]: the one mapping from `bh_models::ErrorCode` to HTTP statuses and gRPC codes.

mod client;
pub mod convert;
pub mod daemon;
pub mod errors;
mod grpc;
mod rest;
pub mod service;

pub use client::Client;
pub use grpc::{
    connect_once, run_compute_client, serve_grpc, ClientOptions, SessionEnd, SessionState,
};
pub use rest::{agent_router, router, MAX_BODY_BYTES};

/// Code generated from `proto/bh/v1/node.proto`.
#[allow(clippy::all, missing_docs)]
pub mod proto {
    tonic::include_proto!("bh.v1");
}
