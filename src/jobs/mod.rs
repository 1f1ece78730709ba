//! Durable jobs: the variation state machine, the typed rows, the job store
//! with leases, the workers, and the one step they run (whose stages live in
//! [`crate::stages`]).

pub mod cdn_sweeper;
pub mod fleet;
pub mod model;
pub mod pipeline;
pub mod progress;
pub mod state;
pub mod store;
pub mod sweeper;
pub mod wake;
pub mod workdir;
pub mod worker;

pub use model::{Asset, Claim, Update, Variation};
pub use pipeline::Pipeline;
pub use state::State;
pub use store::{JobStore, Store, StoreError};
