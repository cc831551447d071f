//! Compiles `proto/bh/v1/node.proto` with the protoc shipped by `protoc-bin-vendored`, so no system protoc is needed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // prost-build finds protoc through this variable; a build script is single-threaded, so setting it is sound.
    std::env::set_var("PROTOC", protoc);
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest_dir.join("../../proto");
    let node_proto = proto_root.join("bh/v1/node.proto");
    let well_known = protoc_bin_vendored::include_path()?;
    println!("cargo:rerun-if-changed={}", node_proto.display());
    tonic_prost_build::configure()
        .btree_map(".")
        // The generated `connect(dst)` constructor would clash with the `Connect` rpc; clients are built
        // from a `Channel` with `NodeServiceClient::new` instead.
        .build_transport(false)
        .compile_protos(&[node_proto], &[proto_root, well_known])?;
    Ok(())
}
