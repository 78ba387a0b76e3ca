//! `camgate events`: read the store without the daemon (or beside it).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use camgate_core::Kind;

use crate::store::EventFilter;

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    #[arg(short, long)]
    config: Option<PathBuf>,
    /// Only events with a seq above this.
    #[arg(long, default_value_t = 0)]
    after: u64,
    /// At most this many events (without --follow).
    #[arg(long, default_value_t = 100)]
    limit: u32,
    #[arg(long)]
    source: Option<String>,
    #[arg(long)]
    kind: Option<Kind>,
    /// Keep printing new events as they are stored.
    #[arg(short, long)]
    follow: bool,
    /// One JSON object per line (with `seq`) instead of a human line.
    #[arg(long)]
    json: bool,
}

pub fn events(args: EventsArgs) -> ExitCode {
    let (config, _) = match super::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match super::store_runtime(&config) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async move {
        let (store, writer) = match super::open_store(&config).await {
            Ok(s) => s,
            Err(code) => return code,
        };
        let filter = EventFilter { source: args.source.clone(), kind: args.kind };
        let mut after = args.after;
        let mut out = std::io::stdout().lock();
        let code = loop {
            let page = match store.read_after(after, if args.follow { 1000 } else { args.limit }, &filter).await {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: {e}");
                    break ExitCode::from(1);
                }
            };
            for e in &page {
                let line = if args.json {
                    serde_json::to_string(e).unwrap_or_default()
                } else {
                    format!("{:>8}  {}", e.seq, crate::sinks::log::format_event(&e.event))
                };
                if writeln!(out, "{line}").is_err() {
                    return ExitCode::SUCCESS; // the reader went away (a pipe to `head`)
                }
            }
            let _ = out.flush();
            after = page.last().map_or(after, |e| e.seq);
            if !args.follow {
                break ExitCode::SUCCESS;
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = tokio::signal::ctrl_c() => break ExitCode::SUCCESS,
            }
        };
        writer.close().await;
        code
    })
}
