//! `strata claims gc [--dry-run]`: one claim garbage-collection pass on a running broker.

use anyhow::Context;
use clap::{Args, Subcommand};

use super::claim::{GatewayArg, runtime};

#[derive(Debug, Args)]
pub struct ClaimsArgs {
    #[command(subcommand)]
    pub command: ClaimsCommand,
}

#[derive(Debug, Subcommand)]
pub enum ClaimsCommand {
    /// Delete payloads whose tickets left the log (both tiers) and expired uploads, now.
    ///
    /// Calls POST /v1/admin/claims/gc on the broker and prints its report as JSON: what was
    /// deleted (or, with --dry-run, what would be) and why, and how many claims were kept
    /// because a ticket still points to them or they are younger than claimcheck.gc.grace.
    Gc(GcArgs),
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Report what would be deleted; delete nothing.
    #[arg(long)]
    dry_run: bool,

    #[command(flatten)]
    gateway: GatewayArg,
}

pub fn run(args: ClaimsArgs) -> anyhow::Result<()> {
    let ClaimsCommand::Gc(args) = args.command;
    let url = format!(
        "{}/v1/admin/claims/gc?dry_run={}",
        args.gateway.gateway.trim_end_matches('/'),
        args.dry_run
    );
    runtime()?.block_on(async {
        let response = reqwest::Client::new()
            .post(&url)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        anyhow::ensure!(status.is_success(), "POST {url}: {status}: {body}");
        let report: serde_json::Value =
            serde_json::from_str(&body).context("reading the report")?;
        println!("{}", serde_json::to_string_pretty(&report)?);
        Ok(())
    })
}
