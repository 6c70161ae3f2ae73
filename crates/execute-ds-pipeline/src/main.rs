use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = execute_ds_pipeline::Args::parse();
    ct_step::run_async(&args.common.clone(), execute_ds_pipeline::run(args))
}
