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
        /// Delivery profile of the demo asset (`web`: MP4 ladder, WebM, HLS, stills).
        #[arg(long, default_value = "web")]
        profile: String,
    },
    /// Run only the Runware simulator (the REST protocol at /v1).
    RunwareSim {
        /// Port to listen on (default: simulator.port from the config).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Run arrival checks, transcode and QC on a local master; print the
    /// report. Exits 0 when it passes, 3 when it is rejected.
    Process {
        /// The master video file.
        master: std::path::PathBuf,
        /// Delivery profile (see [profiles] in the config).
        #[arg(long, default_value = "default")]
        profile: String,
        /// A JSON file with the `generation` request the master must match.
        #[arg(long)]
        request: Option<std::path::PathBuf>,
        /// Where to write the renditions (default: a temporary folder, removed after).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run only the transcode stage on a local master: every output of the
    /// profile from one ffmpeg run, plus DIR/summary.json.
    Transcode {
        /// The master video file.
        master: std::path::PathBuf,
        /// Delivery profile (see [profiles] in the config).
        #[arg(long, default_value = "default")]
        profile: String,
        /// Folder for the outputs and summary.json (created if missing).
        #[arg(long)]
        out: std::path::PathBuf,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
        /// Print the ffmpeg command line as a JSON array and stop.
        #[arg(long)]
        print_args: bool,
    },
    /// Print the effective configuration (each secret as <set> or <unset>).
    Config,
    /// GET /healthz of the server these settings start (on loopback): exit 0
    /// when it answers 200, 1 otherwise. For container health checks.
    Healthcheck {
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 5)]
        timeout_secs: u64,
    },
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("REELAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,reelay=info"));
    let cli = Cli::parse();
    let quiet = matches!(
        cli.command,
        Command::Demo { .. }
            | Command::Config
            | Command::Healthcheck { .. }
            | Command::Process { .. }
            | Command::Transcode { .. }
    );
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
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    let settings = Settings::load()?;
    if let Command::Process {
        master,
        profile,
        request,
        out,
        json,
    } = &cli.command
    {
        let req = request
            .as_deref()
            .map(reelay::local::read_request)
            .transpose()?;
        let tmp = tempfile::tempdir()?;
        let out_dir = out.clone().unwrap_or_else(|| tmp.path().to_path_buf());
        let mut report =
            reelay::local::process(&settings, master, profile, req.as_ref(), &out_dir).await?;
        if out.is_none() {
            // The temporary folder goes away with this command.
            report.outputs.clear();
        }
        if *json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            reelay::local::print_human(&report);
        }
        return Ok(if report.verdict == "pass" {
            0
        } else {
            reelay::local::EXIT_REJECTED
        });
    }
    if let Command::Transcode {
        master,
        profile,
        out,
        json,
        print_args,
    } = &cli.command
    {
        if *print_args {
            let argv = reelay::local::transcode_argv(&settings, master, profile, out).await?;
            println!("{}", serde_json::to_string(&argv)?);
            return Ok(0);
        }
        let summary = reelay::local::transcode_only(&settings, master, profile, out).await?;
        if *json {
            println!("{}", serde_json::to_string_pretty(&summary)?);
        } else {
            reelay::local::print_transcode(&summary);
        }
        return Ok(0);
    }
    if let Command::Healthcheck { timeout_secs } = &cli.command {
        let url = reelay::healthcheck::local_url(&settings)?;
        reelay::healthcheck::check(&url, Duration::from_secs(*timeout_secs)).await?;
        println!("ok: {url}");
        return Ok(0);
    }
    let done: anyhow::Result<()> = match cli.command {
        Command::Serve => {
            let app = reelay::startup::Application::build(settings).await?;
            println!("reelay listening on {}", app.api_url());
            app.run_until_stopped().await
        }
        Command::Demo {
            timeout_secs,
            profile,
        } => reelay::demo::run(settings, &profile, Duration::from_secs(timeout_secs)).await,
        Command::RunwareSim { port } => reelay::simulator::run_standalone(settings, port).await,
        Command::Config => {
            println!("{settings:#?}");
            Ok(())
        }
        Command::Process { .. } | Command::Transcode { .. } | Command::Healthcheck { .. } => {
            unreachable!("handled above")
        }
    };
    done.map(|()| 0)
}
