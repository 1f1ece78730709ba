//! One test binary for everything that goes through the HTTP API.

mod assets;
mod callbacks;
mod cancel;
mod cli;
mod cors;
mod dashboard;
mod destinations;
mod equivalence;
mod events;
mod faults;
mod helpers;
mod idempotency;
mod intake;
mod openapi;
mod pages;
mod pipeline;
mod publishing;
mod publishing_sets;
mod restart;
mod telemetry;
mod thumbnails;
mod ttl;
mod upload_url;
mod vast_fields;
mod vast_parser;
mod workers;
