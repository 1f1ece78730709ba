//! reelay: turns an ad-ops request into delivery-ready video on a CDN path.
//!
//! Start at `ARCHITECTURE.md` for the map of modules and the flow.

pub mod api;
pub mod backoff;
pub mod client;
pub mod config;
pub mod config_report;
pub mod demo;
pub mod destinations;
pub mod domain;
pub mod events;
pub mod healthcheck;
pub mod jobs;
pub mod local;
pub mod media;
pub mod notify;
pub mod outbound;
pub mod policy;
pub mod publish;
pub mod reason;
pub mod runware;
pub mod secret;
pub mod simulator;
pub mod stages;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod time;
pub mod tokens;
pub mod views;
