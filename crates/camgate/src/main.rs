#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    camgate::cli::main()
}
