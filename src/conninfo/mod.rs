//! Connection strings with libpq's rules.

/// A parsed connection string.
#[derive(Clone, Debug, Default)]
pub struct Config {}
