fn main() -> std::process::ExitCode {
    let args: execute_ds_pipeline::Args = ct_step::cli::parse();
    ct_step::run_async(&args.common.clone(), execute_ds_pipeline::run(args))
}
