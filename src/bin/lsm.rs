//! The `lsm` binary: see `lsm --help`.

fn main() -> std::process::ExitCode {
    lsm::cli::main()
}
