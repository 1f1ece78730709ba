//! Durable jobs: the variation state machine, its SQLite store with leases,
//! the workers, and the pipeline steps they run.

pub mod cdn_sweeper;
pub mod pipeline;
pub mod state;
pub mod store;
pub mod sweeper;
pub mod worker;

pub use pipeline::Pipeline;
pub use state::State;
pub use store::{Store, StoreError};
