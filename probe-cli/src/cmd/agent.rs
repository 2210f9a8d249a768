//! `probe agent` (the responder plus the scheduled tests, until SIGTERM) and `probe results`
//! (the agent's spool).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use probe_agent::config::{Config, process_env};
use probe_agent::run_loop::{self, Command as LoopCommand};
use probe_agent::spool::{self, Filter, Spool};
use probe_agent::state::{AgentInfo, AgentShared, DEFAULT_RECENT};
use tokio::signal::unix::{SignalKind, signal};

use super::serve;
use crate::cli::{AgentArgs, Cli, Command, ResultsArgs, ServeArgs};

/// How long in-flight runs get to finish after SIGTERM before they are recorded as cut short.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Validates the configuration (exit 2 with every problem), then `--check` or runs.
pub fn main(args: &AgentArgs) -> anyhow::Result<ExitCode> {
    let cfg = match Config::load(args.config.as_deref(), &process_env()) {
        Ok(c) => c,
        Err(problems) => {
            eprint!("probe agent: {problems}");
            return Ok(ExitCode::from(2));
        }
    };
    if args.check {
        println!("{}", serde_json::to_string_pretty(&cfg)?);
        eprintln!(
            "probe agent: the configuration is valid ({} test(s))",
            cfg.tests.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    init_tracing(&cfg)?;
    super::runtime()?.block_on(run(cfg, args.config.clone()))
}

fn init_tracing(cfg: &Config) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::prelude::*;
    let level = if cfg.debug { "debug" } else { "info" };
    let filter = cfg
        .log_filter
        .as_deref()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(level));
    let file = match &cfg.log_dir {
        Some(dir) => {
            let log = probe_agent::log_file::RotatingLog::open(
                dir,
                cfg.log_max_file_bytes,
                cfg.log_keep_files,
            )
            .with_context(|| {
                format!("cannot write the log in {} (PROBE_LOG_DIR)", dir.display())
            })?;
            Some(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(std::sync::Mutex::new(log)),
            )
        }
        None => None,
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
                .with_writer(std::io::stdout),
        )
        .with(file)
        .init();
    Ok(())
}

/// The `probe serve` settings the agent's responder uses.
fn serve_args(cfg: &Config) -> anyhow::Result<ServeArgs> {
    let argv = [
        "probe".to_owned(),
        "serve".to_owned(),
        "--port".to_owned(),
        cfg.stamp_port.to_string(),
        "--control-port".to_owned(),
        cfg.control_port.to_string(),
        "--coalesce".to_owned(),
        humantime::format_duration(cfg.responder_coalesce).to_string(),
    ];
    let Command::Serve(mut args) = Cli::try_parse_from(argv)?.command else {
        anyhow::bail!("the responder settings did not parse as `probe serve`");
    };
    args.control.state_dir = Some(cfg.state_dir.clone());
    args.control.token.clone_from(&cfg.token);
    Ok(args)
}

/// How the exporters reach their URLs (`HTTP(S)_PROXY`, `export.ca_file`).
fn export_client(cfg: &Config) -> anyhow::Result<probe_agent::export::post::Client> {
    probe_agent::export::post::Client::new(cfg.proxy.clone(), cfg.export.ca_file.as_deref())
        .map_err(|e| anyhow::anyhow!("export.ca_file: {e}"))
}

async fn run(cfg: Config, file: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let identity = probe_agent::identity::load(&cfg.state_dir, cfg.fingerprint.as_deref())?;
    let fingerprint = identity.fingerprint().to_string();
    let info = AgentInfo {
        id: probe_agent::identity::agent_id(&fingerprint),
        fingerprint,
        name: cfg.name.clone(),
        tags: cfg.tags.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    tracing::info!(
        fingerprint = %info.fingerprint,
        id = %info.id,
        name = %info.name,
        state_dir = %cfg.state_dir.display(),
        tests = cfg.tests.len(),
        "probe agent starting"
    );
    let shared = AgentShared::new(info, DEFAULT_RECENT);
    let sargs = serve_args(&cfg)?;
    let serve::Bound {
        stamp: responder,
        tcp,
        control,
    } = serve::bind_all(&sargs)?;
    let mesh_links = probe_core::control::MeshLinks::new(probe_agent::mesh_nat::MEMBERSHIP_TTL);
    shared.set_mesh_links(Arc::clone(&mesh_links));
    let control = control.map(|c| c.serve_mesh(mesh_links));
    let http_listener = probe_agent::http::bind(cfg.http_listen).with_context(|| {
        format!(
            "cannot listen on {} (PROBE_HTTP, [http] listen)",
            cfg.http_listen
        )
    })?;
    let metrics = Arc::new(probe_agent::export::Metrics::new());
    shared.set_metrics(Arc::clone(&metrics));
    shared.set_responder_bound();
    let spool = Spool::open(
        &spool::spool_dir(&cfg.state_dir),
        cfg.spool.max_file_bytes,
        cfg.spool.keep_files,
    )?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let control_task = control.map(|c| tokio::spawn(c.run(stopped(stop_rx.clone()))));
    let http_task = tokio::spawn(probe_agent::http::serve(
        http_listener,
        Arc::clone(&shared),
        Arc::clone(&metrics),
        stopped(stop_rx.clone()),
    ));
    let metrics_task = tokio::spawn(probe_agent::export::follow_metrics(
        Arc::clone(&shared),
        Arc::clone(&metrics),
        stopped(stop_rx.clone()),
    ));
    let remote_write_task = match cfg.export.remote_write_url.as_deref() {
        Some(url) => {
            let url = probe_agent::export::post::check_url(url)
                .map_err(|e| anyhow::anyhow!("export.remote_write.url: {e}"))?;
            let queue =
                probe_agent::export::remote_write::Queue::open(&cfg.state_dir.join("remote-write"))
                    .context("cannot create the remote-write queue in the state directory")?;
            Some(tokio::spawn(probe_agent::export::remote_write::run(
                url,
                export_client(&cfg)?,
                queue,
                Arc::clone(&shared),
                Arc::clone(&metrics),
                stopped(stop_rx.clone()),
            )))
        }
        None => None,
    };
    let upload_task = match cfg.export.upload_url.as_deref() {
        Some(url) => {
            let url = probe_agent::export::post::check_url(url)
                .map_err(|e| anyhow::anyhow!("export.upload.url: {e}"))?;
            Some(tokio::spawn(probe_agent::export::upload::run(
                url,
                export_client(&cfg)?,
                cfg.state_dir.clone(),
                Arc::clone(&shared),
                stopped(stop_rx.clone()),
            )))
        }
        None => None,
    };
    let tcp_task = tokio::spawn(tcp.run(stopped(stop_rx.clone())));
    let (mesh_cfg, mesh_cfg_rx) = tokio::sync::watch::channel(cfg.clone());
    let mesh_task = tokio::spawn(probe_agent::mesh_nat::run(
        mesh_cfg_rx,
        Arc::clone(&shared),
        stopped(stop_rx.clone()),
    ));
    let stamp_task = tokio::spawn(responder.run(stopped(stop_rx)));
    let (cmd_tx, cmd_rx) = tokio::sync::mpsc::channel(4);
    let mut loop_task = tokio::spawn(run_loop::run(
        cfg,
        Arc::clone(&shared),
        spool,
        cmd_rx,
        STOP_GRACE,
    ));
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = hup.recv() => match Config::load(file.as_deref(), &process_env()) {
                Ok(new) => {
                    tracing::info!("SIGHUP: the new configuration is valid; reloading");
                    let _ = mesh_cfg.send(new.clone());
                    let _ = cmd_tx.send(LoopCommand::Reload(Box::new(new))).await;
                }
                Err(problems) => tracing::error!(
                    "SIGHUP: reload refused, keeping the running configuration: {problems}"
                ),
            },
            r = &mut loop_task => {
                r.context("the run loop failed")?;
                anyhow::bail!("the run loop ended on its own");
            }
        }
    }
    tracing::info!("stopping: in-flight tests get {STOP_GRACE:?} to finish");
    let _ = cmd_tx.send(LoopCommand::Stop).await;
    loop_task.await.context("the run loop failed")?;
    let _ = stop_tx.send(true);
    stamp_task.await.context("the STAMP responder task")??;
    tcp_task.await.context("the TCP test server task")?;
    let _ = http_task.await;
    let _ = metrics_task.await;
    let _ = mesh_task.await;
    if let Some(t) = remote_write_task {
        let _ = t.await;
    }
    if let Some(t) = upload_task {
        let _ = t.await;
    }
    if let Some(t) = control_task {
        t.await.context("the control plane task")?;
    }
    tracing::info!("probe agent stopped");
    Ok(ExitCode::SUCCESS)
}

/// `probe results`: the spooled records, filtered, as a table or JSON lines.
pub fn results(args: &ResultsArgs) -> anyhow::Result<ExitCode> {
    let state_dir = args
        .state_dir
        .clone()
        .or_else(probe_core::control::default_state_dir)
        .context("no state directory: pass --state-dir DIR or set PROBE_STATE_DIR")?;
    let dir = spool::spool_dir(&state_dir);
    anyhow::ensure!(
        dir.is_dir(),
        "no results spool in {} (is that the agent's state directory? pass --state-dir DIR)",
        state_dir.display()
    );
    let since = args
        .since
        .as_deref()
        .map(|s| spool::parse_since(s, run_loop::unix_ns()))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--since: {e}"))?;
    let records = spool::read(
        &dir,
        &Filter {
            since_unix_ns: since,
            test: args.test.clone(),
        },
    )?;
    let mut out = String::new();
    if args.json {
        for r in &records {
            out.push_str(&serde_json::to_string(r)?);
            out.push('\n');
        }
    } else {
        table(&mut out, &records);
    }
    // A closed pipe (`probe results | head`) is not an error.
    match std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

fn table(out: &mut String, records: &[probe_agent::ResultRecord]) {
    use std::fmt::Write as _;
    let _ = writeln!(
        out,
        "{:>6}  {:<20}  {:<16}  {:<22}  {:<14}  DETAIL",
        "SEQ", "START (UTC)", "TEST", "PEER", "RESULT"
    );
    for r in records {
        let start = std::time::UNIX_EPOCH + Duration::from_nanos(r.start_unix_ns);
        let result = r.error_class.map_or("ok", |c| c.as_str());
        let detail = match (&r.error, r.report.get("sent")) {
            (Some(e), _) => e.clone(),
            (None, Some(sent)) => format!(
                "sent {sent}, lost {}, rtt p50 {} ms",
                r.report["lost"], r.report["rtt_ms"]["p50"]
            ),
            (None, None) => format!("{} run", r.kind),
        };
        let _ = writeln!(
            out,
            "{:>6}  {:<20}  {:<16}  {:<22}  {:<14}  {detail}",
            r.seq,
            humantime::format_rfc3339_seconds(start).to_string(),
            r.test,
            r.peer.as_deref().unwrap_or("-"),
            result,
        );
    }
}
