//! One test binary for everything that goes through the HTTP API.

mod assets;
mod callbacks;
mod cli;
mod cors;
mod dashboard;
mod equivalence;
mod events;
mod faults;
mod helpers;
mod intake;
mod pipeline;
mod publishing;
mod publishing_sets;
mod restart;
mod telemetry;
mod ttl;
mod upload_url;
