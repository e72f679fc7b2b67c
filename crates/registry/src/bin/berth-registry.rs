//! `berth-registry`: the registry alone (same commands as `berth registry`).

use clap::Parser;

#[derive(Parser)]
#[command(name = "berth-registry", version, about = "Berth's OCI registry")]
struct Cli {
    #[command(subcommand)]
    cmd: berth_registry::cli::RegistryCmd,
}

fn main() {
    if let Err(e) = berth_registry::cli::run(Cli::parse().cmd) {
        eprintln!("Error: {e}");
        std::process::exit(1);
    }
}
