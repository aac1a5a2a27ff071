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

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench { which } => bench::run(which),
        Command::Sim { which } => sim_cmd::run(which),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One clear line (and its causes), no backtrace: errors here are about input or outcomes.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
