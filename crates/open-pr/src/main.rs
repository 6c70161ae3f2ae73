fn main() -> std::process::ExitCode {
    let args: open_pr::Args = ct_step::cli::parse();
    ct_step::run_async(&args.common.clone(), open_pr::run(args))
}
