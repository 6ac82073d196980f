//! `loadgen`: see `loadgen --help` and the crate docs in `lib.rs`.

use allegro_loadgen::cli::{self, Command};
use allegro_loadgen::{crash, load, verify};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let status = match cli::parse(&args) {
        Err(message) => {
            eprintln!("loadgen: {message}\nTry 'loadgen --help'.");
            cli::EXIT_USAGE
        }
        Ok(Command::Help(text)) => {
            print!("{text}");
            cli::EXIT_OK
        }
        Ok(Command::Version) => {
            println!("loadgen {}", env!("CARGO_PKG_VERSION"));
            cli::EXIT_OK
        }
        Ok(Command::Load(args)) => load::main(args),
        Ok(Command::Verify(args)) => verify::main(args),
        Ok(Command::Crash(args)) => crash::main(args),
    };
    ExitCode::from(status)
}
