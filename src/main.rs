//! The `reelay` command. Everything it runs lives in the library crate.

use clap::{Parser, Subcommand};
use reelay::config::Settings;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "reelay",
    version,
    about = "Ad-ops requests in, delivery-ready video on a CDN path out"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API, the workers and (by default) the embedded object
    /// store and Runware simulator.
    Serve,
    /// Start the embedded stack, request one 4K asset and follow it to the CDN.
    Demo {
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout_secs: u64,
    },
    /// Run only the Runware simulator (the REST protocol at /v1).
    RunwareSim {
        /// Port to listen on (default: simulator.port from the config).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Print the effective configuration (secrets redacted).
    Config,
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("REELAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,reelay=info"));
    let cli = Cli::parse();
    let quiet = matches!(cli.command, Command::Demo { .. } | Command::Config);
    tracing_subscriber::fmt()
        .with_env_filter(if quiet && std::env::var("REELAY_LOG").is_err() {
            tracing_subscriber::EnvFilter::new("warn")
        } else {
            filter
        })
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load()?;
    match cli.command {
        Command::Serve => {
            let app = reelay::startup::Application::build(settings).await?;
            println!("reelay listening on {}", app.api_url());
            app.run_until_stopped().await
        }
        Command::Demo { timeout_secs } => {
            reelay::demo::run(settings, Duration::from_secs(timeout_secs)).await
        }
        Command::RunwareSim { port } => reelay::simulator::run_standalone(settings, port).await,
        Command::Config => {
            println!("{settings:#?}");
            Ok(())
        }
    }
}
