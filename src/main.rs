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
    /// store and Runware simulator. `--role api`: everything but the workers.
    Serve {
        /// `all` (default) or `api` (no workers: run `reelay worker` beside it).
        #[arg(long, default_value = "all")]
        role: ServeRole,
    },
    /// Run only workers: claim and run pipeline stages; no public HTTP.
    /// Reaches the object store at storage.endpoint and the generator at
    /// runware.api_url (set storage.embedded = false).
    Worker {
        /// Serve GET /healthz on this port (200 when the job store answers
        /// and the worker loops run, else 503); overrides worker.health_port.
        /// 0: no listener.
        #[arg(long)]
        health_port: Option<u16>,
    },
    /// Start the embedded stack, request one 4K asset and follow it to the CDN.
    Demo {
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout_secs: u64,
        /// Delivery profile of the demo asset (`web`: MP4 ladder, WebM, HLS, stills).
        #[arg(long, default_value = "web")]
        profile: String,
        /// Keep the stack running after publishing, so the printed URLs can
        /// be opened (until Ctrl-C).
        #[arg(long)]
        serve: bool,
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
        /// A buyer's spec (`[destinations.NAME]`) to make files for and
        /// judge the set against, as a request's `destinations` does; repeat
        /// for several.
        #[arg(long = "destination", value_name = "NAME")]
        destinations: Vec<String>,
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
    /// Print the effective configuration as TOML (each secret as <set> or
    /// <unset>), with the values startup derives under [derived].
    Config {
        /// Print JSON instead of TOML.
        #[arg(long)]
        json: bool,
    },
    /// Print the OpenAPI 3.1 document these settings serve at
    /// /v1/openapi.json (for client generators; no server needed).
    Openapi,
    /// Create, inspect and follow assets on a running reelay server.
    Assets {
        /// Base URL of the server.
        #[arg(
            long,
            env = "REELAY_URL",
            default_value = "http://127.0.0.1:8080",
            global = true
        )]
        url: String,
        /// API key (sent as a Bearer token).
        #[arg(long, env = "REELAY_API_KEY", hide_env_values = true, global = true)]
        api_key: Option<String>,
        /// Print the server's JSON answers instead of the human view.
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        command: AssetsCommand,
    },
    /// The live workers of a running server and its queue depth by state
    /// (GET /v1/workers).
    Workers {
        /// Base URL of the server.
        #[arg(long, env = "REELAY_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// API key (sent as a Bearer token).
        #[arg(long, env = "REELAY_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
        /// Print the server's JSON answer instead of the human view.
        #[arg(long)]
        json: bool,
    },
    /// GET /healthz of the server these settings start (on loopback): exit 0
    /// when it answers 200, 1 otherwise. For container health checks.
    Healthcheck {
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 5)]
        timeout_secs: u64,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ServeRole {
    All,
    Api,
}

#[derive(Subcommand)]
enum AssetsCommand {
    /// POST /v1/assets: a prompt, or a JSON file with Runware's
    /// videoInference fields (or a whole request).
    Create {
        #[arg(long)]
        campaign: Option<String>,
        /// Delivery profile (see GET /v1/options).
        #[arg(long)]
        profile: Option<String>,
        /// positivePrompt (over the file's).
        #[arg(long)]
        prompt: Option<String>,
        /// A JSON file: the `generation` object, or a whole request body.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        #[arg(long)]
        callback_url: Option<String>,
        /// Follow the asset until it ends (exit 3 unless it is published).
        #[arg(long)]
        watch: bool,
        /// With --watch: give up after this many seconds.
        #[arg(long, default_value_t = 1800)]
        timeout_secs: u64,
    },
    /// GET /v1/assets/{id}.
    Get { id: String },
    /// GET /v1/assets.
    List {
        #[command(flatten)]
        filter: reelay::client::ListFilter,
    },
    /// Follow an asset until it ends: one progress bar per variation; exit 3
    /// unless it is published.
    Watch {
        id: String,
        #[arg(long, default_value_t = 1800)]
        timeout_secs: u64,
    },
    /// POST /v1/assets/{id}/reprocess.
    Reprocess {
        id: String,
        #[arg(long)]
        watch: bool,
        #[arg(long, default_value_t = 1800)]
        timeout_secs: u64,
    },
    /// DELETE /v1/assets/{id}.
    Cancel { id: String },
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("REELAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,reelay=info"));
    let cli = Cli::parse();
    let quiet = matches!(
        cli.command,
        Command::Demo { .. }
            | Command::Config { .. }
            | Command::Openapi
            | Command::Assets { .. }
            | Command::Workers { .. }
            | Command::Healthcheck { .. }
            | Command::Process { .. }
            | Command::Transcode { .. }
    );
    let format = match reelay::telemetry::LogFormat::from_env() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    reelay::telemetry::init_logging(
        format,
        if quiet && std::env::var("REELAY_LOG").is_err() {
            tracing_subscriber::EnvFilter::new("warn")
        } else {
            filter
        },
    );
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
    if let Command::Assets {
        url,
        api_key,
        json,
        command,
    } = cli.command
    {
        return assets(&url, api_key.as_deref(), json, command).await;
    }
    if let Command::Workers { url, api_key, json } = &cli.command {
        let Some(key) = api_key.as_deref().filter(|k| !k.is_empty()) else {
            anyhow::bail!("an API key is required: --api-key or REELAY_API_KEY");
        };
        let v = reelay::client::Client::new(url, key)?.workers().await?;
        if *json {
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            print!("{}", reelay::client::render_workers(&v));
        }
        return Ok(0);
    }
    let mut settings = Settings::load()?;
    if let Command::Worker {
        health_port: Some(port),
    } = &cli.command
    {
        settings.worker.health_port = *port;
    }
    if let Command::Process {
        master,
        profile,
        request,
        destinations,
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
        let mut report = reelay::local::process(
            &settings,
            master,
            profile,
            req.as_ref(),
            destinations,
            &out_dir,
        )
        .await?;
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
        Command::Serve { role } => {
            let role = match role {
                ServeRole::All => reelay::startup::Role::All,
                ServeRole::Api => reelay::startup::Role::Api,
            };
            let app = reelay::startup::Application::build_role(settings, role).await?;
            println!("reelay listening on {}", app.api_url());
            app.run_until_stopped().await
        }
        Command::Worker { .. } => {
            let app =
                reelay::startup::Application::build_role(settings, reelay::startup::Role::Worker)
                    .await?;
            println!("reelay worker running");
            app.run_until_stopped().await
        }
        Command::Demo {
            timeout_secs,
            profile,
            serve,
        } => reelay::demo::run(settings, &profile, Duration::from_secs(timeout_secs), serve).await,
        Command::RunwareSim { port } => reelay::simulator::run_standalone(settings, port).await,
        Command::Config { json } => {
            let doc = reelay::config_report::effective(&settings, Settings::merged_layers()?);
            if json {
                println!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                print!("{}", reelay::config_report::to_toml(&doc)?);
            }
            Ok(())
        }
        Command::Openapi => {
            let doc = reelay::api::openapi::document(&settings.runware.model_spec);
            println!("{}", serde_json::to_string_pretty(&doc)?);
            Ok(())
        }
        Command::Process { .. }
        | Command::Transcode { .. }
        | Command::Healthcheck { .. }
        | Command::Workers { .. }
        | Command::Assets { .. } => {
            unreachable!("handled above")
        }
    };
    done.map(|()| 0)
}

/// `reelay assets …`: the public API of a running server.
async fn assets(
    url: &str,
    api_key: Option<&str>,
    json: bool,
    command: AssetsCommand,
) -> anyhow::Result<u8> {
    use reelay::client::{self, watch, Client};
    let Some(key) = api_key.filter(|k| !k.is_empty()) else {
        anyhow::bail!("an API key is required: --api-key or REELAY_API_KEY");
    };
    let c = Client::new(url, key)?;
    let show = |v: &serde_json::Value| -> anyhow::Result<()> {
        println!("{}", serde_json::to_string_pretty(v)?);
        Ok(())
    };
    let follow = |id: String, timeout_secs: u64| {
        let c = &c;
        async move {
            let asset = if json {
                // No bars: the final view alone, as JSON.
                let started = std::time::Instant::now();
                loop {
                    let a = c.get(&id).await?;
                    if a["status"] != "processing" {
                        break a;
                    }
                    anyhow::ensure!(
                        started.elapsed().as_secs() < timeout_secs,
                        "asset {id} did not finish within {timeout_secs} s"
                    );
                    tokio::time::sleep(Duration::from_millis(400)).await;
                }
            } else {
                watch::follow(c, &id, Duration::from_secs(timeout_secs)).await?
            };
            let published = if json {
                println!("{}", serde_json::to_string_pretty(&asset)?);
                asset["status"] == "published"
            } else {
                watch::print_summary(&asset)
            };
            anyhow::Ok(if published {
                0
            } else {
                client::EXIT_NOT_PUBLISHED
            })
        }
    };
    match command {
        AssetsCommand::Create {
            campaign,
            profile,
            prompt,
            file,
            callback_url,
            watch: and_watch,
            timeout_secs,
        } => {
            let body = client::create_body(&client::CreateArgs {
                campaign,
                profile,
                prompt,
                file,
                callback_url,
            })?;
            let created = c.create(&body).await?;
            let id = created["id"].as_str().unwrap_or_default().to_string();
            if !and_watch {
                if json {
                    show(&created)?;
                } else {
                    println!("{id}");
                }
                return Ok(0);
            }
            if !json {
                println!("asset {id} created; watching");
            }
            follow(id, timeout_secs).await
        }
        AssetsCommand::Get { id } => {
            let a = c.get(&id).await?;
            if json {
                show(&a)?;
            } else {
                for v in a["variations"].as_array().into_iter().flatten() {
                    println!("{}", watch::Row::from_view(v).bar());
                }
                watch::print_summary(&a);
            }
            Ok(0)
        }
        AssetsCommand::List { filter } => {
            let l = c.list(&filter).await?;
            if json {
                show(&l)?;
            } else {
                for a in l["assets"].as_array().into_iter().flatten() {
                    println!(
                        "{}  {:<20} {:<12} {:<10} {}",
                        a["id"].as_str().unwrap_or(""),
                        a["status"].as_str().unwrap_or(""),
                        a["campaign"].as_str().unwrap_or(""),
                        a["profile"].as_str().unwrap_or(""),
                        a["created_at"].as_str().unwrap_or("")
                    );
                }
                if let Some(next) = l["next_cursor"].as_str() {
                    println!("more: the same with --cursor {next}");
                }
            }
            Ok(0)
        }
        AssetsCommand::Watch { id, timeout_secs } => follow(id, timeout_secs).await,
        AssetsCommand::Reprocess {
            id,
            watch: and_watch,
            timeout_secs,
        } => {
            let r = c.reprocess(&id).await?;
            if and_watch {
                return follow(id, timeout_secs).await;
            }
            if json {
                show(&r)?;
            } else {
                println!("asset {id}: reprocessing");
            }
            Ok(0)
        }
        AssetsCommand::Cancel { id } => {
            let r = c.cancel(&id).await?;
            if json {
                show(&r)?;
            } else {
                println!(
                    "asset {id}: {}",
                    r["status"].as_str().unwrap_or("cancelled")
                );
            }
            Ok(0)
        }
    }
}
