//! `stratus bench ...` (being written).

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {}

pub fn run(which: BenchCommand) -> anyhow::Result<()> {
    match which {}
}
