//! `reevec`: reeve's OCI runtime.

fn main() {
    std::process::exit(reeve_runtime::cli::main());
}
