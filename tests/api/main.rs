//! One test binary for everything that goes through the HTTP API.

mod assets;
mod faults;
mod helpers;
mod intake;
mod pipeline;
mod restart;
mod ttl;
