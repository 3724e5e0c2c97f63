//! `roost-bench`: the load generator on its own (the same as `roost bench`).

use std::process::ExitCode;

use clap::Parser;
use roost_bench::BenchArgs;

/// MQTT load generator (emqtt-bench compatible conn/sub/pub, plus pubsub).
#[derive(Debug, Parser)]
#[command(name = "roost-bench", version, about)]
struct Cli {
    #[command(flatten)]
    bench: BenchArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match roost_bench::run(cli.bench) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roost-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
