//! `stratus`: the Stratus command line.

mod agent_cmd;
#[cfg(feature = "kvm")]
mod agent_kvm;
mod bench;
mod bench_api;
mod bench_api_http;
mod bench_api_report;
mod bench_api_setup;
mod bench_api_stages;
mod bench_console;
mod bench_journal;
mod bench_recovery;
mod bench_sim;
mod bench_whatif;
mod fuzz_cmd;
mod hostmon_cmd;
mod manage_cmd;
mod serve_cmd;
mod sim_cmd;
mod whatif_cmd;
mod whatif_text;

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
    /// The host agent: connects to the management server and runs its calls.
    Agent(Box<agent_cmd::AgentArgs>),
    /// The host monitor of a KVM host: storage leases and the isolation
    /// watchdog in their own process, beside `stratus agent --host-monitor-dir`.
    Hostmon(hostmon_cmd::HostmonArgs),
    /// The durable management server: agent gateway, journal, control socket.
    Manage(manage_cmd::ManageArgs),
    /// The CloudStack-compatible API server (simulated hosts, durable Store).
    Serve(serve_cmd::ServeArgs),
    /// Benchmarks of the core (see BENCHMARKS.md).
    Bench {
        #[command(subcommand)]
        which: bench::BenchCommand,
    },
    /// Capacity what-if: failures, drains, added hosts, settings, growth (text, JSON or HTML report).
    Whatif(whatif_cmd::WhatIfArgs),
    /// Prints a server's inventory (from its Store) as JSON for `stratus whatif`.
    Export(whatif_cmd::ExportArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench { which } => bench::run(which),
        Command::Sim { which } => sim_cmd::run(which),
        Command::Agent(args) => agent_cmd::run(*args),
        Command::Hostmon(args) => hostmon_cmd::run(args),
        Command::Manage(args) => manage_cmd::run(args),
        Command::Serve(args) => serve_cmd::run(args),
        Command::Whatif(args) => whatif_cmd::run(args),
        Command::Export(args) => whatif_cmd::export_cmd(args),
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
