//! Parse the command line, run it, map errors to exit codes. Nothing else lives here.

use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let cli = match dbbench::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(async {
        let cancel = CancellationToken::new();
        let on_signal = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\ninterrupted: stopping the current phase and writing what was measured (Ctrl-C again to abort at once)");
                on_signal.cancel();
                if tokio::signal::ctrl_c().await.is_ok() {
                    eprintln!("aborted");
                    std::process::exit(130);
                }
            }
        });
        match dbbench::cli::execute(cli, cancel).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e}");
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    eprintln!("  caused by: {s}");
                    source = s.source();
                }
                e.exit_code()
            }
        }
    });
    ExitCode::from(code as u8)
}
