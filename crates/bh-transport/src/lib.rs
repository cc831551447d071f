//! bh-transport: the orchestrator-compute gRPC protocol, the REST gateway and the typed REST client.

pub mod service;
