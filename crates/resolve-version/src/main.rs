fn main() -> std::process::ExitCode {
    let args: resolve_version::Args = ct_step::cli::parse();
    ct_step::run_blocking(&args.common.clone(), || resolve_version::run(&args))
}
