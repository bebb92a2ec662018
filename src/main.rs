//! `mizumori`: parse the command line, set up logging, run the command, report errors.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = mizumori::cli::Cli::parse();
    mizumori::logging::init(cli.verbose);
    match mizumori::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
