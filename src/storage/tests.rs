//! Tests against the embedded server.
