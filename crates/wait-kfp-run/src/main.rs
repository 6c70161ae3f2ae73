fn main() -> std::process::ExitCode {
    let args: wait_kfp_run::Args = ct_step::cli::parse();
    ct_step::run_async(&args.common.clone(), wait_kfp_run::run(args))
}
