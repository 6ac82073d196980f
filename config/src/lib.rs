//! `allegro-config`: reads a Grafana Tempo `tempo.yaml` unchanged, fills in Tempo's defaults for
//! everything absent, adds Allegro's own `allegro:` knobs, and parses Tempo-style command-line
//! flags.
//!
//! ```text
//! allegro -config.file=tempo.yaml [-config.expand-env=true]
//!     parse_args ──> Cli ──> load_file ──> Loaded { config: Config, warnings }
//! ```
//!
//! Code map:
//! - `cli.rs`: Go `flag`-style command line ([`parse_args`], [`usage`]).
//! - `envsubst.rs`: `${VAR}` expansion with Tempo's (drone/envsubst) rules ([`expand_env`]).
//! - `duration.rs`: Go's `time.ParseDuration` ([`parse_duration`]).
//! - `scalar.rs`: YAML scalars read the way Tempo's YAML 1.1 library reads them.
//! - `raw.rs`: the YAML shape and Tempo's semantics (receivers, legacy overrides).
//! - `keys.rs`: Tempo keys Allegro ignores, unknown keys, and their line numbers.
//! - `model.rs`: the public [`Config`], its [`defaults`] and [`Config::validate`].
//! - `load.rs`: the pipeline and error placement ([`load_file`], [`load_str`], [`parse_str`]).
//!
//! **Architecture Invariant:** the only IO is reading the one configuration file
//! ([`load_file`]), the process environment (with `expand_env`) and the CPU count (for the
//! default `allegro.shards`). Everything else is a pure function of its input.
//!
//! **Architecture Invariant:** a configuration Tempo accepts loads here with the same meaning.
//! Keys Allegro does not act on are never fatal: each becomes a warning in [`Loaded::warnings`].
//! A value of the wrong form is always fatal, with a [`ConfigError`] naming key, line, column
//! and the expected form.
//!
//! **Architecture Invariant:** a [`Config`] from the loaders has passed [`Config::validate`].
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

mod cli;
mod duration;
mod envsubst;
mod error;
mod keys;
mod load;
mod model;
mod raw;
mod scalar;

pub use cli::{parse_args, usage, Cli, CliError};
pub use duration::{format_duration, parse_duration};
pub use envsubst::{expand_env, EnvError};
pub use error::ConfigError;
pub use load::{load_file, load_str, parse_str, Loaded};
pub use model::{
    defaults, AllegroConfig, Backend, CompactorConfig, Config, CorsConfig, DistributorConfig,
    Endpoint, IngesterConfig, LogLevel, OverridesConfig, QuerierConfig, QueryFrontendConfig,
    ServerConfig, StorageConfig, WalFsync,
};

/// The configuration Allegro runs with when no `-config.file` is given: the reference
/// `tempo.yaml` (`/work/shared/tempo.yaml`), with block and WAL data under `./data` so that it
/// runs without root. [`Config::embedded_default`] parses it.
pub const DEFAULT_CONFIG_YAML: &str = "\
stream_over_http_enabled: true

server:
  http_listen_port: 3200

distributor:
  receivers:
    otlp:
      protocols:
        grpc:
          endpoint: 0.0.0.0:4317

storage:
  trace:
    backend: local
    local:
      path: ./data/traces
    wal:
      path: ./data/wal
";
