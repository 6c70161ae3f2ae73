fn main() -> std::process::ExitCode {
    let args: write_registry_metadata::Args = ct_step::cli::parse();
    ct_step::run_async(&args.common.clone(), write_registry_metadata::run(args))
}
