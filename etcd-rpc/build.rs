//! Compiles `proto/etcd.proto` into gRPC clients with the protoc that `protoc-bin-vendored` ships,
//! so that building needs nothing but the Rust toolchain.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/etcd.proto");
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    config.bytes(["."]);
    tonic_prost_build::configure()
        .build_server(false)
        .compile_with_config(config, &["proto/etcd.proto"], &["proto"])?;
    Ok(())
}
