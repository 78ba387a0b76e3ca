#![forbid(unsafe_code)]

/// mimalloc instead of the system allocator: camgate allocates many short-lived buffers per
/// request (bodies, XML trees, JSON), where glibc malloc cost about a fifth of the CPU in
/// `scripts/bench viewtron` and fragmented under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    camgate::cli::main()
}
