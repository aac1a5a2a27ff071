//! `stratus`: the Stratus command line.

mod bench;
mod bench_sim;
mod sim_cmd;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "stratus",
    version,
    about = "CloudStack-style IaaS management, simulator-first"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The simulated datacenter: scenario runs.
    Sim {
        #[command(subcommand)]
        which: sim_cmd::SimCommand,
    },
    /// Benchmarks of the core (see BENCHMARKS.md).
    Bench {
        #[command(subcommand)]
        which: bench::BenchCommand,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench { which } => bench::run(which),
        Command::Sim { which } => sim_cmd::run(which),
    }
}
