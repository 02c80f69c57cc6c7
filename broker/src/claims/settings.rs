//! The `claimcheck.*` broker configs (declared in `config.rs`) turned into the gateway's
//! [`ClaimCheckConfig`] plus the broker-side settings (enable switch, GC interval).
//!
//! Broker key -> gateway field: `claimcheck.chunk.bytes` -> `chunk.bytes`; every other key keeps
//! its name. Durations (`claimcheck.upload.expiry`, `claimcheck.gc.grace`) are humantime text
//! (`30s`, `1h`). Derived defaults: an empty `claimcheck.spool.dir` is `<data-dir>/claims-spool`,
//! an empty `claimcheck.public.url` is `http://<HTTP listener>` (a wildcard bind is advertised as
//! 127.0.0.1), so ticket URIs are absolute and a consumer can fetch them as they are.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use strata_claimcheck::ClaimCheckConfig;

/// Everything `serve` needs to run the gateway.
#[derive(Debug, Clone)]
pub struct ClaimSettings {
    pub enabled: bool,
    pub gc_interval: Duration,
    pub auto_create_topics: bool,
    pub num_partitions: i32,
    pub gateway: ClaimCheckConfig,
}

fn get<'a>(configs: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    configs.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn number<T: std::str::FromStr>(
    configs: &BTreeMap<String, String>,
    key: &str,
    default: T,
) -> anyhow::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    match get(configs, key) {
        Some(v) => v.parse().with_context(|| format!("{key}={v:?}")),
        None => Ok(default),
    }
}

fn duration(
    configs: &BTreeMap<String, String>,
    key: &str,
    default: Duration,
) -> anyhow::Result<Duration> {
    match get(configs, key) {
        Some(v) => humantime::parse_duration(v)
            .with_context(|| format!("{key}={v:?}: expected a duration such as 30s, 10m or 24h")),
        None => Ok(default),
    }
}

impl ClaimSettings {
    /// From the broker configs (every key present, defaults filled in by `config.rs`).
    pub fn from_broker_configs(
        configs: &BTreeMap<String, String>,
        data_dir: &Path,
        http_listen: SocketAddr,
    ) -> anyhow::Result<Self> {
        let d = ClaimCheckConfig::default();
        let public_url = match get(configs, "claimcheck.public.url") {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => {
                let host = if http_listen.ip().is_unspecified() {
                    "127.0.0.1".to_string()
                } else {
                    http_listen.ip().to_string()
                };
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host
                };
                format!("http://{host}:{}", http_listen.port())
            }
        };
        let spool_dir = match get(configs, "claimcheck.spool.dir") {
            Some(dir) => dir.into(),
            None => data_dir.join("claims-spool"),
        };
        let gateway = ClaimCheckConfig {
            max_upload_bytes: number(configs, "claimcheck.max.upload.bytes", d.max_upload_bytes)?,
            multipart_part_bytes: number(
                configs,
                "claimcheck.multipart.part.bytes",
                d.multipart_part_bytes,
            )?,
            multipart_concurrency: number(
                configs,
                "claimcheck.multipart.concurrency",
                d.multipart_concurrency,
            )?,
            chunk_bytes: number(configs, "claimcheck.chunk.bytes", d.chunk_bytes)?,
            upload_expiry: duration(configs, "claimcheck.upload.expiry", d.upload_expiry)?,
            max_part_bytes: number(
                configs,
                "claimcheck.upload.max.part.bytes",
                d.max_part_bytes,
            )?,
            gc_grace: duration(configs, "claimcheck.gc.grace", d.gc_grace)?,
            max_concurrent_requests: number(
                configs,
                "claimcheck.max.concurrent.requests",
                d.max_concurrent_requests,
            )?,
            max_requests_per_second: number(
                configs,
                "claimcheck.max.requests.per.second",
                d.max_requests_per_second,
            )?,
            max_header_bytes: number(configs, "claimcheck.max.header.bytes", d.max_header_bytes)?,
            spool_dir: Some(spool_dir),
            public_url: Some(public_url),
        };
        Ok(Self {
            enabled: get(configs, "claimcheck.enable") != Some("false"),
            gc_interval: Duration::from_millis(number(
                configs,
                "claimcheck.gc.interval.ms",
                300_000,
            )?),
            auto_create_topics: get(configs, "auto.create.topics.enable") != Some("false"),
            num_partitions: number(configs, "num.partitions", 1)?,
            gateway,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BROKER_CONFIGS;

    fn defaults() -> BTreeMap<String, String> {
        BROKER_CONFIGS
            .iter()
            .map(|d| (d.name.to_string(), d.default.to_string()))
            .collect()
    }

    #[test]
    fn broker_defaults_match_the_gateway_defaults() {
        let listen: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let s = ClaimSettings::from_broker_configs(&defaults(), Path::new("/d"), listen).unwrap();
        let expected = ClaimCheckConfig {
            spool_dir: Some("/d/claims-spool".into()),
            public_url: Some("http://127.0.0.1:8080".into()),
            ..ClaimCheckConfig::default()
        };
        assert_eq!(s.gateway, expected);
        assert!(s.enabled);
        assert_eq!(s.gc_interval, Duration::from_secs(300));
    }

    #[test]
    fn overrides_and_bad_values() {
        let mut c = defaults();
        c.insert("claimcheck.gc.grace".into(), "10s".into());
        c.insert("claimcheck.chunk.bytes".into(), "1024".into());
        c.insert("claimcheck.public.url".into(), "https://gw.example/".into());
        let listen: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let s = ClaimSettings::from_broker_configs(&c, Path::new("/d"), listen).unwrap();
        assert_eq!(s.gateway.gc_grace, Duration::from_secs(10));
        assert_eq!(s.gateway.chunk_bytes, 1024);
        assert_eq!(s.gateway.public_url.as_deref(), Some("https://gw.example"));
        c.insert("claimcheck.upload.expiry".into(), "soon".into());
        let err = ClaimSettings::from_broker_configs(&c, Path::new("/d"), listen).unwrap_err();
        assert!(
            format!("{err:#}").contains("claimcheck.upload.expiry"),
            "{err:#}"
        );
    }
}
