use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = open_pr::Args::parse();
    ct_step::run_async(&args.common.clone(), open_pr::run(args))
}
