fn main() -> std::process::ExitCode {
    neon_watchdog::cli::main().into()
}
