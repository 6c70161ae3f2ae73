fn main() -> std::process::ExitCode {
    let args: bump_gitops_version::Args = ct_step::cli::parse();
    // libgit2's first use sets SSL_CERT_FILE/DIR: do it before the harness starts threads.
    ct_gitops::git::preinit();
    ct_step::run_blocking(&args.common.clone(), || bump_gitops_version::run(args))
}
